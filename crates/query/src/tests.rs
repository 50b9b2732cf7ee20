//! Unit tests: SQL shapes, errors, and the compiled clauses run against a real SQLite table.

use super::*;

fn custom(name: &str) -> Option<SaType> {
    match name {
        "CustomKeywordField" => Some(SaType::Keyword),
        "CustomIntField" => Some(SaType::Int),
        "CustomBoolField" => Some(SaType::Bool),
        "CustomDatetimeField" => Some(SaType::Datetime),
        "CustomDoubleField" => Some(SaType::Double),
        _ => None,
    }
}

fn sqlite(q: &str) -> Compiled {
    compile(q, Dialect::Sqlite, &custom).unwrap()
}

fn err(q: &str) -> String {
    compile(q, Dialect::Sqlite, &custom)
        .unwrap_err()
        .to_string()
}

#[test]
fn shapes_and_params() {
    let c = sqlite("WorkflowType = 'order' AND ExecutionStatus = 'Running'");
    assert_eq!(c.where_sql, "(workflow_type = ?1 AND status = ?2)");
    assert_eq!(
        c.params,
        vec![SqlValue::Text("order".into()), SqlValue::Int(1)]
    );
    let c = compile_with_offset(
        "ExecutionStatus = 2 or WorkflowId != \"x\"",
        Dialect::Postgres,
        &custom,
        2,
    )
    .unwrap();
    assert_eq!(c.where_sql, "(status = $2 OR workflow_id != $3)");
    let c = sqlite("");
    assert_eq!(c.where_sql, "1=1");
    let c = sqlite("CloseTime IS NULL ORDER BY StartTime DESC");
    assert_eq!(c.where_sql, "close_time IS NULL");
    assert_eq!(c.order_by.as_deref(), Some("start_time DESC"));
    let c = sqlite("`WorkflowId` IN ('a','b') and not (HistoryLength < 5)");
    assert_eq!(
        c.where_sql,
        "(workflow_id IN (?1, ?2) AND (NOT history_length < ?3))"
    );
    let c = sqlite("StartTime BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-02T00:00:00+01:00'");
    assert_eq!(
        c.params,
        vec![
            SqlValue::Int(1_704_067_200_000_000_000),
            SqlValue::Int(1_704_150_000_000_000_000)
        ]
    );
    let c = sqlite("WorkflowId STARTS_WITH 'ord_%'");
    assert_eq!(c.where_sql, "workflow_id LIKE ?1 ESCAPE '\\'");
    assert_eq!(c.params, vec![SqlValue::Text("ord\\_\\%%".into())]);
    let c = sqlite("ExecutionDuration > '1h30m'");
    assert_eq!(c.params, vec![SqlValue::Int(5_400_000_000_000)]);
    let c = sqlite("CustomIntField >= -3");
    assert_eq!(
        c.where_sql,
        "json_extract(search_attributes, '$.\"CustomIntField\"') >= ?1"
    );
    assert!(
        sqlite("TemporalChangeVersion = 'p-1'")
            .where_sql
            .starts_with("EXISTS (SELECT 1 FROM json_each")
    );
}

#[test]
fn group_by_only_execution_status() {
    assert!(sqlite("GROUP BY ExecutionStatus").group_by_status);
    assert!(sqlite("WorkflowType='x' group by ExecutionStatus").group_by_status);
    assert!(err("GROUP BY WorkflowType").contains("only supported for ExecutionStatus"));
}

#[test]
fn errors_are_clear() {
    assert_eq!(
        err("Foo = 'x'"),
        "invalid query: invalid search attribute: Foo"
    );
    assert!(err("WorkflowId = ").starts_with("invalid query: malformed SQL query:"));
    assert!(err("WorkflowId = 'x").contains("unterminated string"));
    assert!(err("(WorkflowId = 'x'").contains("parenthesis"));
    assert!(err("WorkflowId LIKE 'x%'").contains("not supported"));
    assert!(err("ExecutionStatus = 'Sleeping'").contains("invalid value"));
    assert!(
        err("CustomIntField = 'abc'")
            .contains("invalid value for search attribute CustomIntField of type Int")
    );
    assert!(err("WorkflowId = 'a' 'b'").starts_with("invalid query: malformed SQL query"));
    assert!(err("StartTime > 'yesterday'").contains("Datetime"));
}

#[test]
fn never_panics_on_garbage() {
    let seeds = [
        "WorkflowId = 'a' AND (StartTime > '2024-01-01T00:00:00Z' OR CustomIntField IN (1,2))",
        "ExecutionStatus BETWEEN 1 AND 3 ORDER BY CloseTime ASC, StartTime DESC",
        "`CustomKeywordField` STARTS_WITH \"x\\\"y\" group by ExecutionStatus",
    ];
    let mut rng = 0x2545f4914f6cdd1du64;
    for s in seeds {
        for cut in 0..=s.len() {
            if s.is_char_boundary(cut) {
                let _ = compile(&s[..cut], Dialect::Sqlite, &custom);
                let _ = compile(&s[cut..], Dialect::Postgres, &custom);
            }
        }
        let bytes = s.as_bytes();
        for _ in 0..2000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut v = bytes.to_vec();
            let i = (rng as usize) % v.len();
            v[i] = b"()'\"`,=<>!- aZ9."[(rng >> 32) as usize % 16];
            let _ = compile(&String::from_utf8_lossy(&v), Dialect::Sqlite, &custom);
        }
    }
}

#[test]
fn compiled_clauses_run_on_sqlite() {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE visibility (namespace_id TEXT, run_id TEXT, workflow_id TEXT, workflow_type TEXT,
           task_queue TEXT, status INTEGER, start_time INTEGER, execution_time INTEGER, close_time INTEGER,
           execution_duration INTEGER, history_length INTEGER, history_size_bytes INTEGER,
           state_transition_count INTEGER, parent_workflow_id TEXT, root_workflow_id TEXT,
           search_attributes TEXT);
         INSERT INTO visibility VALUES
           ('n','r1','order-1','order','q',1,100,100,NULL,NULL,5,10,3,NULL,'order-1',
            '{\"CustomKeywordField\":\"gold\",\"CustomIntField\":7,\"CustomBoolField\":true,\"TemporalChangeVersion\":[\"p-1\",\"p-2\"]}'),
           ('n','r2','order-2','order','q',2,200,200,300,100,30,10,9,NULL,'order-2','{\"CustomIntField\":1,\"TemporalScheduledById\":\"nightly\",\"TemporalScheduledStartTime\":1767225600000000000}'),
           ('n','r3','ship_1','ship','q',3,300,300,400,100,8,10,4,'order-1','order-1','{}');",
    )
    .unwrap();
    let count = |q: &str| -> i64 {
        let c = compile_with_offset(q, Dialect::Sqlite, &custom, 2).unwrap();
        let mut params: Vec<rusqlite::types::Value> = vec!["n".to_string().into()];
        for p in &c.params {
            params.push(match p {
                SqlValue::Int(i) => (*i).into(),
                SqlValue::Real(f) => (*f).into(),
                SqlValue::Text(s) => s.clone().into(),
                SqlValue::Bool(b) => (*b as i64).into(),
            });
        }
        let sql = format!(
            "SELECT COUNT(*) FROM visibility WHERE namespace_id = ?1 AND ({})",
            c.where_sql
        );
        db.query_row(&sql, rusqlite::params_from_iter(params.iter()), |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(count(""), 3);
    assert_eq!(count("WorkflowType = 'order'"), 2);
    assert_eq!(count("ExecutionStatus = 'Running'"), 1);
    assert_eq!(
        count("ExecutionStatus != 'Running' AND WorkflowType = 'order'"),
        1
    );
    assert_eq!(count("CloseTime IS NULL"), 1);
    assert_eq!(count("CloseTime IS NOT NULL"), 2);
    assert_eq!(count("CustomKeywordField = 'gold'"), 1);
    assert_eq!(count("CustomIntField > 2"), 1);
    assert_eq!(count("CustomIntField IN (1, 7)"), 2);
    assert_eq!(count("CustomBoolField = true"), 1);
    assert_eq!(count("TemporalChangeVersion = 'p-2'"), 1);
    assert_eq!(count("TemporalChangeVersion IN ('x', 'p-1')"), 1);
    assert_eq!(count("WorkflowId STARTS_WITH 'order'"), 2);
    assert_eq!(count("WorkflowId STARTS_WITH 'ship_'"), 1);
    assert_eq!(count("StartTime BETWEEN 150 AND 350"), 2);
    assert_eq!(count("HistoryLength NOT IN (5, 8)"), 1);
    assert_eq!(
        count("ParentWorkflowId = 'order-1' OR (HistoryLength >= 30)"),
        2
    );
    assert_eq!(count("NOT (WorkflowType = 'order')"), 1);
    // What a schedule sets on the runs it starts, read from the JSON as Temporal names them.
    assert_eq!(count("TemporalScheduledById = 'nightly'"), 1);
    assert_eq!(count("TemporalScheduledById STARTS_WITH 'night'"), 1);
    assert_eq!(count("TemporalScheduledById IS NULL"), 2);
    assert_eq!(
        count("TemporalScheduledStartTime = '2026-01-01T00:00:00Z'"),
        1
    );
    assert_eq!(
        count("TemporalScheduledStartTime < '2026-01-01T00:00:00Z'"),
        0
    );
    assert_eq!(
        count(
            "TemporalScheduledStartTime BETWEEN '2025-12-31T23:00:00Z' AND '2026-01-01T01:00:00+01:00'"
        ),
        1
    );
}

#[test]
fn go_durations() {
    assert_eq!(parse_go_duration("1s"), Some(1_000_000_000));
    assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
    assert_eq!(parse_go_duration("250ms"), Some(250_000_000));
    assert_eq!(parse_go_duration("2h45m"), Some(9_900_000_000_000));
    assert_eq!(parse_go_duration("10us"), Some(10_000));
    assert_eq!(parse_go_duration("5x"), None);
    assert_eq!(parse_go_duration(""), None);
}

#[test]
fn nesting_is_bounded_like_temporal() {
    let parens = |n: usize| format!("{}WorkflowId = 'a'{}", "(".repeat(n), ")".repeat(n));
    let nots = |n: usize| format!("{}WorkflowId = 'a'", "NOT ".repeat(n));
    assert!(compile(&parens(MAX_NESTING), Dialect::Sqlite, &custom).is_ok());
    assert!(compile(&nots(MAX_NESTING), Dialect::Sqlite, &custom).is_ok());
    // A query deep enough to overflow a thread's stack if the parser recursed on it unchecked.
    for q in [
        parens(MAX_NESTING + 1),
        nots(MAX_NESTING + 1),
        parens(4500),
        nots(4500),
    ] {
        assert!(
            err(&q).starts_with("invalid query: malformed SQL query: max nesting level reached"),
            "{}",
            err(&q)
        );
    }
    let unclosed = "(".repeat(100_000);
    assert!(err(&unclosed).contains("max nesting level reached"));
}

#[test]
fn long_chains_are_bounded_like_temporal_and_run_on_sqlite() {
    let chain = |n: usize, op: &str| {
        (0..n)
            .map(|i| format!("WorkflowId = 'w{i}'"))
            .collect::<Vec<_>>()
            .join(op)
    };
    for op in [" OR ", " AND "] {
        assert_eq!(
            err(&chain(MAX_AST_DEPTH + 1, op)),
            "invalid query: malformed SQL query: max ast depth reached"
        );
        assert_eq!(
            err(&chain(6000, op)),
            "invalid query: malformed SQL query: max ast depth reached"
        );
        // The longest accepted chain stays under SQLite's expression depth limit of 1000.
        let c = sqlite(&chain(MAX_AST_DEPTH, op));
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE visibility (namespace_id TEXT, workflow_id TEXT)")
            .unwrap();
        let sql = format!(
            "SELECT COUNT(*) FROM visibility WHERE namespace_id = 'n' AND ({})",
            c.where_sql
        );
        let params: Vec<String> = c
            .params
            .iter()
            .map(|p| match p {
                SqlValue::Text(s) => s.clone(),
                other => panic!("unexpected parameter {other:?}"),
            })
            .collect();
        let n: i64 = db
            .query_row(&sql, rusqlite::params_from_iter(params.iter()), |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 0);
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Queries built from the language's own pieces, valid or not.
    fn fragment() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "WorkflowId",
            "ExecutionStatus",
            "StartTime",
            "CustomIntField",
            "CustomKeywordField",
            "TemporalChangeVersion",
            "Unknown",
            "`Custom Field`",
            "=",
            "!=",
            "<=",
            ">",
            "AND",
            "OR",
            "NOT",
            "IN",
            "BETWEEN",
            "IS",
            "NULL",
            "STARTS_WITH",
            "ORDER BY",
            "GROUP BY",
            "DESC",
            "(",
            ")",
            ",",
            "-",
            "'Running'",
            "'2024-01-01T00:00:00Z'",
            "\"x\\\"y\"",
            "'",
            "42",
            "-9223372036854775808",
            "99999999999999999999",
            "1.5e308",
            "true",
            "é",
        ])
        .prop_map(str::to_string)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn token_soup_never_panics(parts in prop::collection::vec(fragment(), 0..40)) {
            let q = parts.join(" ");
            for d in [Dialect::Sqlite, Dialect::Postgres] {
                if let Err(e) = compile(&q, d, &custom) {
                    prop_assert!(e.to_string().starts_with("invalid query: "));
                }
            }
        }

        #[test]
        fn any_text_never_panics(q in ".{0,200}") {
            let _ = compile(&q, Dialect::Sqlite, &custom);
        }

        #[test]
        fn accepted_queries_prepare_on_sqlite(parts in prop::collection::vec(fragment(), 0..24)) {
            let q = parts.join(" ");
            if let Ok(c) = compile_with_offset(&q, Dialect::Sqlite, &custom, 2) {
                let db = rusqlite::Connection::open_in_memory().unwrap();
                db.execute_batch(SCHEMA).unwrap();
                let mut sql = format!(
                    "SELECT COUNT(*) FROM visibility WHERE namespace_id = ?1 AND ({})",
                    c.where_sql
                );
                if let Some(o) = &c.order_by {
                    sql.push_str(&format!(" ORDER BY {o}"));
                }
                prop_assert!(db.prepare(&sql).is_ok(), "{q:?} compiled to bad SQL: {sql}");
            }
        }
    }

    const SCHEMA: &str = "CREATE TABLE visibility (namespace_id TEXT, run_id TEXT,
        workflow_id TEXT, workflow_type TEXT, task_queue TEXT, status INTEGER, start_time INTEGER,
        execution_time INTEGER, close_time INTEGER, execution_duration INTEGER,
        history_length INTEGER, history_size_bytes INTEGER, state_transition_count INTEGER,
        parent_workflow_id TEXT, root_workflow_id TEXT, search_attributes TEXT);";
}
