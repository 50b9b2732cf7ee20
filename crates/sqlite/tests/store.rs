//! The SQLite backend against the storage contract: group-committed batches, the current-run
//! pointer, history reads, fencing of stale shard owners, visibility queries and durability
//! across reopening the file; and the contract checks every backend shares
//! (`perdure_store::conformance`).

use perdure_sqlite::{Location, SqliteStore};
use perdure_store::{
    ExecutionWrite, Store, StoreError, StoredNamespace, VisibilityQuery, VisibilityRow, WriteBatch,
    visibility_sort_key,
};

fn write(run: &str, status: i32, events: &[i64], sa: &str) -> ExecutionWrite {
    ExecutionWrite {
        namespace_id: "ns".into(),
        workflow_id: format!("wf-{run}"),
        run_id: run.into(),
        status,
        open: status == 1,
        state: run.as_bytes().to_vec(),
        events: events.iter().map(|i| (*i, vec![*i as u8])).collect(),
        set_current: true,
        wake_at: Some(0),
        visibility: Some(VisibilityRow {
            namespace_id: "ns".into(),
            run_id: run.into(),
            workflow_id: format!("wf-{run}"),
            workflow_type: "order".into(),
            task_queue: "q".into(),
            status,
            start_time: 1_000,
            execution_time: 1_000,
            close_time: (status != 1).then_some(2_000),
            sort_key: visibility_sort_key(1_000, (status != 1).then_some(2_000)),
            history_length: events.len() as i64,
            search_attributes: sa.into(),
            info: run.as_bytes().to_vec(),
            ..Default::default()
        }),
    }
}

async fn commit(
    s: &SqliteStore,
    shard: i32,
    range: i64,
    w: ExecutionWrite,
) -> Result<(), StoreError> {
    s.commit(WriteBatch::writes(shard, range, vec![w]))
        .await
        .unwrap()
}

#[tokio::test]
async fn batches_commit_and_read_back_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    {
        let s = SqliteStore::open(Location::File(path.clone())).unwrap();
        let ranges = s.acquire_shards("me", &[0, 1, 2, 3]).unwrap();
        // Many concurrent batches are folded into few transactions; all must land.
        let mut waits = Vec::new();
        for i in 0..50 {
            let rx = s.commit(WriteBatch::writes(
                1,
                ranges[1],
                vec![write(&format!("r{i}"), 1, &[1, 2, 3], "{}")],
            ));
            waits.push(rx);
        }
        for w in waits {
            w.await.unwrap().unwrap();
        }
        commit(&s, 1, ranges[1], write("r0", 2, &[4], "{}"))
            .await
            .unwrap();
        s.put_namespace(
            &StoredNamespace {
                id: "ns".into(),
                name: "default".into(),
                data: vec![1],
            },
            true,
        )
        .unwrap();
        assert!(matches!(
            s.put_namespace(
                &StoredNamespace {
                    id: "other".into(),
                    name: "default".into(),
                    data: vec![],
                },
                true
            ),
            Err(StoreError::AlreadyExists(_))
        ));
    }
    let s = SqliteStore::open(Location::File(path)).unwrap();
    assert_eq!(
        s.read_events("ns", "r0", 1, 100).unwrap(),
        vec![vec![1], vec![2], vec![3], vec![4]]
    );
    assert_eq!(s.read_events("ns", "r0", 3, 1).unwrap(), vec![vec![3]]);
    assert_eq!(
        perdure_store::conformance::waking_runs(&s, i64::MAX).len(),
        49,
        "r0 closed"
    );
    assert_eq!(
        s.get_current_run("ns", "wf-r7").unwrap().as_deref(),
        Some("r7")
    );
    assert_eq!(s.list_namespaces().unwrap().len(), 1);
}

#[tokio::test]
async fn a_stale_owner_is_fenced_off() {
    let s = SqliteStore::open(Location::Temporary).unwrap();
    let old = s.acquire_shards("old", &[0, 1]).unwrap();
    let new = s.acquire_shards("new", &[0, 1]).unwrap();
    assert!(new[0] > old[0]);
    let err = commit(&s, 0, old[0], write("a", 1, &[1], "{}"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::ShardOwnershipLost { shard_id: 0, .. }
    ));
    assert!(
        s.get_execution("ns", "a").unwrap().is_none(),
        "nothing of a fenced batch lands"
    );
    commit(&s, 0, new[0], write("a", 1, &[1], "{}"))
        .await
        .unwrap();
    assert!(s.get_execution("ns", "a").unwrap().is_some());
}

#[tokio::test]
async fn visibility_queries_filter_count_and_group() {
    let s = SqliteStore::open(Location::Temporary).unwrap();
    let r = s.acquire_shards("me", &[0]).unwrap();
    commit(
        &s,
        0,
        r[0],
        write("a", 1, &[1], r#"{"CustomKeywordField":"x"}"#),
    )
    .await
    .unwrap();
    commit(
        &s,
        0,
        r[0],
        write("b", 2, &[1], r#"{"CustomKeywordField":"y"}"#),
    )
    .await
    .unwrap();
    commit(&s, 0, r[0], write("c", 2, &[1], "{}"))
        .await
        .unwrap();
    let all = VisibilityQuery {
        group_by_status: true,
        ..VisibilityQuery::all()
    };
    let (n, groups) = s.count_visibility("ns", &all).unwrap();
    assert_eq!(n, 3);
    assert_eq!(groups, vec![(1, 1), (2, 2)]);
    let page1 = s.list_visibility("ns", &all, 2, None).unwrap();
    assert_eq!(page1.len(), 2);
    assert_eq!(page1[0].0, b"a".to_vec(), "running runs come first");
    let page2 = s
        .list_visibility("ns", &all, 2, Some(page1[1].1.clone()))
        .unwrap();
    assert_eq!(page2.len(), 1);
}

#[tokio::test]
async fn cluster_id_is_created_once_and_survives_reopen_and_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    {
        let s = SqliteStore::open(Location::File(path.clone())).unwrap();
        assert_eq!(s.name(), "sqlite");
        assert_eq!(s.cluster_id("first").unwrap(), "first");
        assert_eq!(s.cluster_id("second").unwrap(), "first");
    }
    let s = SqliteStore::open(Location::File(path)).unwrap();
    assert_eq!(s.cluster_id("third").unwrap(), "first");

    // A database written by a binary that only knew schema v1 gets the table on open.
    let old = dir.path().join("v1.db");
    {
        let c = rusqlite::Connection::open(&old).unwrap();
        c.execute_batch(include_str!("../migrations/0001_init.sql"))
            .unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
    }
    let s = SqliteStore::open(Location::File(old)).unwrap();
    assert_eq!(s.cluster_id("upgraded").unwrap(), "upgraded");
    assert_eq!(s.cluster_id("again").unwrap(), "upgraded");
}

#[tokio::test]
async fn honours_the_shared_storage_contract() {
    perdure_store::conformance::run_all(|| SqliteStore::open(Location::Temporary).unwrap()).await;
}
