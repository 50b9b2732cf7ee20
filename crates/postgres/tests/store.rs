//! The PostgreSQL backend against the shared storage contract (`perdure_store::conformance`),
//! plus what only a server database has: migrations (applied once, a newer schema refused),
//! clear errors for an unreachable database or a wrong password, and durability across
//! reopening. Every test runs on its own throwaway cluster (`initdb` + `pg_ctl`).

use std::sync::atomic::{AtomicUsize, Ordering};

use perdure_postgres::testing::TempCluster;
use perdure_postgres::{PgOptions, PgStore};
use perdure_store::{Store, StoreError};

/// A cluster of this test's own (stopped when it drops).
fn cluster() -> TempCluster {
    TempCluster::start().expect("a throwaway PostgreSQL cluster")
}

#[tokio::test(flavor = "multi_thread")]
async fn honours_the_shared_storage_contract() {
    let c = cluster();
    let n = AtomicUsize::new(0);
    // Every check gets a fresh, empty database.
    let fresh = || {
        let db = format!("t{}", n.fetch_add(1, Ordering::Relaxed));
        c.create_database(&db).unwrap();
        PgStore::open(PgOptions::new(c.url(&db))).unwrap()
    };
    perdure_store::conformance::run_all(fresh).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let c = &cluster();
    c.create_database("mig").unwrap();
    let url = c.url("mig");
    {
        let s = PgStore::open(PgOptions::new(&url)).unwrap();
        assert_eq!(s.name(), "postgres");
        assert_eq!(s.cluster_id("first").unwrap(), "first");
    }
    // Reopening applies nothing and keeps the data.
    let s = PgStore::open(PgOptions::new(&url)).unwrap();
    assert_eq!(s.cluster_id("second").unwrap(), "first");
    drop(s);
    c.psql("mig", "UPDATE perdure_schema SET version = 99")
        .unwrap();
    let err = PgStore::open(PgOptions::new(&url)).err().expect("refused");
    assert!(
        err.to_string()
            .contains("database schema version 99 is newer than this binary supports"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_database_and_wrong_password_are_clear_errors() {
    let c = &cluster();
    let wrong = c
        .url("postgres")
        .replace(perdure_postgres::testing::PASSWORD, "nope");
    let err = PgStore::open(PgOptions::new(wrong)).err().expect("refused");
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = PgStore::open(PgOptions::new(format!(
        "postgres://perdure:x@127.0.0.1:{port}/db"
    )))
    .err()
    .expect("refused");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string().contains("cannot connect to PostgreSQL"),
        "{err}"
    );
    let err = PgStore::open(PgOptions::new("mysql://nope"))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("invalid PostgreSQL URL"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schema_in_the_url_keeps_clusters_apart_in_one_database() {
    let c = &cluster();
    c.create_database("shared").unwrap();
    let a = PgStore::open(PgOptions::new(format!(
        "{}?schema=cluster_a",
        c.url("shared")
    )))
    .unwrap();
    let b = PgStore::open(PgOptions::new(format!(
        "{}?schema=cluster_b",
        c.url("shared")
    )))
    .unwrap();
    assert_eq!(a.cluster_id("a").unwrap(), "a");
    assert_eq!(
        b.cluster_id("b").unwrap(),
        "b",
        "a second schema is a second cluster"
    );
    let err = PgStore::open(PgOptions::new(format!(
        "{}?schema=Bad-Name",
        c.url("shared")
    )))
    .err()
    .expect("refused");
    assert!(err.to_string().contains("schema \"Bad-Name\""), "{err}");
}
