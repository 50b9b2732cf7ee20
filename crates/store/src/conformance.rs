//! The storage contract as executable checks, shared by every backend's tests (the memory
//! store's unit tests here, `perdure-sqlite`'s and `perdure-postgres`'s `tests/store.rs`): call
//! [`run_all`] with a constructor of fresh, empty stores. Each check panics with a message naming
//! the backend.

use super::{
    ExecutionWrite, Member, RunRef, Store, StoreError, StoredBatchJob, StoredNamespace,
    StoredSchedule, VisibilityQuery, VisibilityRow, WakeKey, WriteBatch, visibility_sort_key,
};

const NS: &str = "ns";

/// One execution write in namespace `ns`: `status` 1 is running (and open, with a task waiting:
/// wake time 0), anything else closed at time 2000; events carry their id and the run's first byte as payload.
pub fn write(workflow_id: &str, run: &str, status: i32, events: &[i64]) -> ExecutionWrite {
    ExecutionWrite {
        namespace_id: NS.into(),
        workflow_id: workflow_id.into(),
        run_id: run.into(),
        status,
        open: status == 1,
        state: format!("{run}:{status}").into_bytes(),
        events: events.iter().map(|i| (*i, event(run, *i))).collect(),
        set_current: true,
        wake_at: (status == 1).then_some(0),
        visibility: Some(VisibilityRow {
            namespace_id: NS.into(),
            run_id: run.into(),
            workflow_id: workflow_id.into(),
            workflow_type: "order".into(),
            task_queue: "q".into(),
            status,
            start_time: 1_000,
            execution_time: 1_000,
            close_time: (status != 1).then_some(2_000),
            sort_key: visibility_sort_key(1_000, (status != 1).then_some(2_000)),
            history_length: events.len() as i64,
            search_attributes: "{}".into(),
            info: run.as_bytes().to_vec(),
            ..Default::default()
        }),
    }
}

/// The payload [`write`] stores for event `id` of `run`.
pub fn event(run: &str, id: i64) -> Vec<u8> {
    vec![id as u8, run.as_bytes().first().copied().unwrap_or(0)]
}

/// Commits one batch and waits for its answer.
pub async fn commit(
    s: &dyn Store,
    shard_id: i32,
    range_id: i64,
    executions: Vec<ExecutionWrite>,
) -> Result<(), StoreError> {
    s.commit(WriteBatch::writes(shard_id, range_id, executions))
        .await
        .unwrap_or_else(|_| Err(StoreError::Backend("the writer dropped the batch".into())))
}

/// Deletes runs in one fenced batch and waits for its answer.
pub async fn delete(
    s: &dyn Store,
    shard_id: i32,
    range_id: i64,
    runs: &[&str],
) -> Result<(), StoreError> {
    let mut b = WriteBatch::writes(shard_id, range_id, vec![]);
    b.deletes = runs
        .iter()
        .map(|r| RunRef {
            namespace_id: NS.into(),
            run_id: r.to_string(),
        })
        .collect();
    s.commit(b)
        .await
        .unwrap_or_else(|_| Err(StoreError::Backend("the writer dropped the batch".into())))
}

/// The empty visibility query.
pub fn everything(group_by_status: bool) -> VisibilityQuery {
    VisibilityQuery {
        group_by_status,
        ..VisibilityQuery::all()
    }
}

/// `query` parsed with the custom attributes the visibility checks use.
pub fn query(q: &str) -> VisibilityQuery {
    use perdure_query::SaType;
    perdure_query::parse(q, &|name| match name {
        "CustomKeywordField" => Some(SaType::Keyword),
        "CustomIntField" => Some(SaType::Int),
        "CustomDoubleField" => Some(SaType::Double),
        "CustomBoolField" => Some(SaType::Bool),
        "CustomDatetimeField" => Some(SaType::Datetime),
        "CustomTextField" => Some(SaType::Text),
        "Tags" => Some(SaType::KeywordList),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// Runs every check, each on a fresh store from `new_store`.
pub async fn run_all<S: Store>(new_store: impl Fn() -> S) {
    batches_commit_and_read_back(&new_store()).await;
    a_stale_owner_is_fenced_off(&new_store()).await;
    a_batch_lands_whole_or_not_at_all(&new_store()).await;
    batches_queued_together_are_judged_one_by_one(&new_store()).await;
    namespaces_are_unique_by_id_and_name(&new_store());
    deleting_a_run_removes_all_of_it(&new_store()).await;
    cluster_id_is_kept(&new_store());
    batch_jobs_are_unique_and_listed_newest_first(&new_store());
    schedules_are_unique_listed_by_id_and_deleted(&new_store());
    deployments_are_kept_per_namespace_and_name(&new_store());
    the_empty_query_lists_newest_first(&new_store()).await;
    visibility_queries_filter_order_and_count(&new_store()).await;
    the_fence_guards_deletes(&new_store()).await;
    membership_and_leadership(&new_store());
    the_shard_count_only_grows(&new_store());
    waking_runs_are_paged_in_wake_order(&new_store()).await;
}

/// Every open run with a wake time before `until`, read a few at a time as engines read them.
pub fn waking_runs(s: &dyn Store, until: i64) -> Vec<WakeKey> {
    let mut all: Vec<WakeKey> = Vec::new();
    loop {
        let page = s.waking_executions(all.last(), until, 7).unwrap();
        let n = page.len();
        all.extend(page.into_iter().map(|(k, _)| k));
        if n < 7 {
            return all;
        }
    }
}

/// Open runs with a wake time come a page at a time in `(wake time, namespace id, run id)`
/// order, each with its latest state, whatever the page size, and only those due before the
/// bound given; closed runs and runs with no wake time are skipped, and a later write moves a
/// run to its new wake time.
pub async fn waking_runs_are_paged_in_wake_order(s: &dyn Store) {
    let b = s.name();
    let r = s.acquire_shards("me", &[0]).unwrap();
    let mut expected = Vec::new();
    for ns in ["ns", "ns-2", "a"] {
        let mut writes = Vec::new();
        for i in 0..12i64 {
            let run = format!("run-{i:02}");
            let mut w = write(
                &format!("wf-{i}"),
                &run,
                if i % 4 == 3 { 2 } else { 1 },
                &[1],
            );
            w.namespace_id = ns.into();
            w.visibility.as_mut().unwrap().namespace_id = ns.into();
            w.wake_at = match i % 3 {
                0 => None,
                1 => Some(0),
                _ => Some(1_000 + i),
            };
            if let (Some(wake_at), true) = (w.wake_at, i % 4 != 3) {
                expected.push(WakeKey {
                    wake_at,
                    run: RunRef {
                        namespace_id: ns.into(),
                        run_id: run,
                    },
                });
            }
            writes.push(w);
        }
        commit(s, 0, r[0], writes).await.unwrap();
    }
    let order = |k: &WakeKey| (k.wake_at, k.run.namespace_id.clone(), k.run.run_id.clone());
    expected.sort_by_key(order);
    assert_eq!(waking_runs(s, i64::MAX), expected, "{b}: pages of 7");
    let all = s.waking_executions(None, i64::MAX, 1000).unwrap();
    assert_eq!(
        all.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        expected,
        "{b}: one page"
    );
    assert!(
        all.iter()
            .all(|(k, e)| e.state == format!("{}:1", k.run.run_id).into_bytes()),
        "{b}: each with its state"
    );
    let page = s
        .waking_executions(Some(&expected[4]), i64::MAX, 2)
        .unwrap();
    assert_eq!(page.len(), 2, "{b}");
    assert_eq!(page[0].0, expected[5], "{b}: strictly after the key given");
    assert!(
        s.waking_executions(expected.last(), i64::MAX, 10)
            .unwrap()
            .is_empty(),
        "{b}: nothing after the last"
    );
    let due: Vec<_> = expected
        .iter()
        .filter(|k| k.wake_at < 1_005)
        .cloned()
        .collect();
    assert_eq!(
        waking_runs(s, 1_005),
        due,
        "{b}: only those due before the bound"
    );
    assert!(due.iter().any(|k| k.wake_at == 0) && due.iter().any(|k| k.wake_at > 0));
    let from = WakeKey {
        wake_at: 1_005,
        run: RunRef {
            namespace_id: String::new(),
            run_id: String::new(),
        },
    };
    let window = s.waking_executions(Some(&from), 1_009, 100).unwrap();
    assert_eq!(
        window.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        expected
            .iter()
            .filter(|k| (1_005..1_009).contains(&k.wake_at))
            .cloned()
            .collect::<Vec<_>>(),
        "{b}: a window [from, until)"
    );
    // A later write moves the run: to another time, or out of the index.
    let mut w = write("wf-1", "run-01", 1, &[2]);
    w.wake_at = Some(5_000);
    let mut gone = write("wf-2", "run-02", 1, &[2]);
    gone.wake_at = None;
    commit(s, 0, r[0], vec![w, gone]).await.unwrap();
    let now = waking_runs(s, i64::MAX);
    let moved = now
        .iter()
        .find(|k| k.run.namespace_id == "ns" && k.run.run_id == "run-01");
    assert_eq!(moved.map(|k| k.wake_at), Some(5_000), "{b}");
    assert_eq!(now.last(), moved, "{b}: latest wake last");
    assert!(
        !now.iter()
            .any(|k| k.run.namespace_id == "ns" && k.run.run_id == "run-02"),
        "{b}: no wake time, not listed"
    );
}

/// Concurrent batches all land; history reads honour `first_event_id` and `limit`; the open
/// flag, the latest state and the current-run pointer follow the writes.
pub async fn batches_commit_and_read_back(s: &dyn Store) {
    let b = s.name();
    let ranges = s.acquire_shards("me", &[0, 1]).unwrap();
    assert_eq!(ranges.len(), 2, "{b}: one range id per shard");
    let waits: Vec<_> = (0..20)
        .map(|i| {
            let run = format!("r{i}");
            s.commit(WriteBatch::writes(
                1,
                ranges[1],
                vec![write(&format!("wf-{run}"), &run, 1, &[1, 2, 3])],
            ))
        })
        .collect();
    for w in waits {
        w.await.unwrap().unwrap();
    }
    commit(s, 1, ranges[1], vec![write("wf-r0", "r0", 2, &[4])])
        .await
        .unwrap();
    let all: Vec<_> = (1..=4).map(|i| event("r0", i)).collect();
    assert_eq!(s.read_events(NS, "r0", 1, usize::MAX).unwrap(), all, "{b}");
    assert_eq!(s.read_events(NS, "r0", 2, 2).unwrap(), all[1..3], "{b}");
    assert!(s.read_events(NS, "r0", 5, 10).unwrap().is_empty(), "{b}");
    assert!(s.read_events(NS, "none", 1, 10).unwrap().is_empty(), "{b}");
    assert!(
        s.read_events("other", "r0", 1, 10).unwrap().is_empty(),
        "{b}"
    );
    assert_eq!(waking_runs(s, i64::MAX).len(), 19, "{b}: r0 closed");
    assert_eq!(
        s.get_execution(NS, "r0").unwrap().unwrap().state,
        b"r0:2",
        "{b}: the latest state"
    );
    assert!(s.get_execution(NS, "none").unwrap().is_none(), "{b}");
    assert_eq!(
        s.get_current_run(NS, "wf-r7").unwrap().as_deref(),
        Some("r7"),
        "{b}"
    );
    assert!(s.get_current_run(NS, "wf-none").unwrap().is_none(), "{b}");
    assert!(
        s.get_current_run("other", "wf-r7").unwrap().is_none(),
        "{b}"
    );

    // Continue-as-new: the old run closes and the new one becomes current, in one batch.
    let mut old = write("wf-r1", "r1", 2, &[4]);
    old.set_current = false;
    commit(
        s,
        1,
        ranges[1],
        vec![old, write("wf-r1", "r1-next", 1, &[1])],
    )
    .await
    .unwrap();
    assert_eq!(
        s.get_current_run(NS, "wf-r1").unwrap().as_deref(),
        Some("r1-next"),
        "{b}: the current run moves"
    );
    assert_eq!(waking_runs(s, i64::MAX).len(), 19, "{b}");
}

/// A batch under a superseded fencing token (or for a shard never acquired) is refused whole.
pub async fn a_stale_owner_is_fenced_off(s: &dyn Store) {
    let b = s.name();
    let old = s.acquire_shards("old", &[0, 1]).unwrap();
    let new = s.acquire_shards("new", &[0, 1]).unwrap();
    assert!(new[0] > old[0] && new[1] > old[1], "{b}: range ids grow");
    let err = commit(s, 0, old[0], vec![write("wf-a", "a", 1, &[1])])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ShardOwnershipLost { shard_id: 0, .. }),
        "{b}: {err:?}"
    );
    assert!(
        s.get_execution(NS, "a").unwrap().is_none(),
        "{b}: nothing of a fenced batch lands"
    );
    assert!(s.read_events(NS, "a", 1, 10).unwrap().is_empty(), "{b}");
    assert!(s.get_current_run(NS, "wf-a").unwrap().is_none(), "{b}");
    let err = commit(s, 7, 1, vec![write("wf-a", "a", 1, &[1])])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ShardOwnershipLost { shard_id: 7, .. }),
        "{b}: a shard nobody acquired: {err:?}"
    );
    commit(s, 0, new[0], vec![write("wf-a", "a", 1, &[1])])
        .await
        .unwrap();
    assert!(s.get_execution(NS, "a").unwrap().is_some(), "{b}");
    // Shards are taken one by one: another owner taking shard 1 leaves shard 0 to "new".
    let third = s.acquire_shards("third", &[1]).unwrap();
    assert_eq!(third.len(), 1, "{b}");
    assert!(third[0] > new[1], "{b}");
    let err = commit(s, 1, new[1], vec![write("wf-b", "b", 1, &[1])])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ShardOwnershipLost { shard_id: 1, .. }),
        "{b}: {err:?}"
    );
    commit(s, 0, new[0], vec![write("wf-c", "c", 1, &[1])])
        .await
        .unwrap();
}

/// A batch whose second execution cannot be written (an event id already stored) leaves no
/// trace of its first one.
pub async fn a_batch_lands_whole_or_not_at_all(s: &dyn Store) {
    let b = s.name();
    let r = s.acquire_shards("me", &[0]).unwrap();
    commit(s, 0, r[0], vec![write("wf-a", "a", 1, &[1, 2])])
        .await
        .unwrap();
    let mut again = write("wf-a", "a", 1, &[2]);
    again.events[0].1 = vec![0xff];
    let r2 = commit(s, 0, r[0], vec![write("wf-x", "x", 1, &[1, 2]), again]).await;
    assert!(r2.is_err(), "{b}: an event id is written once");
    assert!(s.get_execution(NS, "x").unwrap().is_none(), "{b}");
    assert!(s.read_events(NS, "x", 1, 10).unwrap().is_empty(), "{b}");
    assert!(s.get_current_run(NS, "wf-x").unwrap().is_none(), "{b}");
    assert_eq!(
        s.read_events(NS, "a", 1, 10).unwrap(),
        vec![event("a", 1), event("a", 2)],
        "{b}"
    );
    assert_eq!(
        s.count_visibility(NS, &everything(false)).unwrap().0,
        1,
        "{b}"
    );
    // The store still takes the next batch.
    commit(s, 0, r[0], vec![write("wf-a", "a", 2, &[3])])
        .await
        .unwrap();
    assert_eq!(s.read_events(NS, "a", 1, 10).unwrap().len(), 3, "{b}");
}

/// Batches queued while the writer is busy (a group commit, where the backend has one) land or
/// fail each on its own: a fenced-off batch and a failing batch among them leave the others'
/// writes in place, and a shard taken meanwhile fences the batches queued after it.
pub async fn batches_queued_together_are_judged_one_by_one(s: &dyn Store) {
    let b = s.name();
    let old = s.acquire_shards("old", &[0, 1]).unwrap();
    let new = s.acquire_shards("new", &[1]).unwrap();
    commit(s, 0, old[0], vec![write("wf-a", "a", 1, &[1])])
        .await
        .unwrap();
    // A large first batch keeps the writer busy while the next ones queue behind it.
    let many: Vec<i64> = (1..=2_000).collect();
    let mut dup = write("wf-a", "a", 1, &[1]);
    dup.events[0].1 = vec![0xff];
    let queued = vec![
        s.commit(WriteBatch::writes(
            0,
            old[0],
            vec![write("wf-big", "big", 1, &many)],
        )),
        s.commit(WriteBatch::writes(
            0,
            old[0],
            vec![write("wf-b", "b", 1, &[1])],
        )),
        s.commit(WriteBatch::writes(
            1,
            old[1],
            vec![write("wf-c", "c", 1, &[1])],
        )),
        s.commit(WriteBatch::writes(
            0,
            old[0],
            vec![write("wf-d", "d", 1, &[1]), dup],
        )),
        s.commit(WriteBatch::writes(
            1,
            new[0],
            vec![write("wf-e", "e", 1, &[1])],
        )),
        s.commit(WriteBatch::writes(
            0,
            old[0],
            vec![write("wf-f", "f", 1, &[1, 2])],
        )),
    ];
    let mut results = Vec::new();
    for r in queued {
        results.push(
            r.await.unwrap_or_else(|_| {
                Err(StoreError::Backend("the writer dropped the batch".into()))
            }),
        );
    }
    assert!(results[0].is_ok(), "{b}: {:?}", results[0]);
    assert!(results[1].is_ok(), "{b}: {:?}", results[1]);
    assert!(
        matches!(
            results[2],
            Err(StoreError::ShardOwnershipLost { shard_id: 1, .. })
        ),
        "{b}: a stale owner's batch among others: {:?}",
        results[2]
    );
    assert!(results[3].is_err(), "{b}: an event id is written once");
    assert!(results[4].is_ok(), "{b}: {:?}", results[4]);
    assert!(results[5].is_ok(), "{b}: {:?}", results[5]);
    for run in ["big", "b", "e", "f"] {
        assert!(
            s.get_execution(NS, run).unwrap().is_some(),
            "{b}: {run} landed"
        );
    }
    assert_eq!(
        s.read_events(NS, "big", 1, 3_000).unwrap().len(),
        2_000,
        "{b}"
    );
    assert_eq!(s.read_events(NS, "f", 1, 10).unwrap().len(), 2, "{b}");
    for run in ["c", "d"] {
        assert!(
            s.get_execution(NS, run).unwrap().is_none(),
            "{b}: {run} left no trace"
        );
        assert!(
            s.read_events(NS, run, 1, 10).unwrap().is_empty(),
            "{b}: {run}"
        );
    }
    assert_eq!(
        s.read_events(NS, "a", 1, 10).unwrap(),
        vec![event("a", 1)],
        "{b}: the failed batch did not touch a"
    );
    // A shard taken after the writes were judged fences the next one.
    let newer = s.acquire_shards("newer", &[0]).unwrap();
    assert!(newer[0] > old[0], "{b}");
    let err = commit(s, 0, old[0], vec![write("wf-g", "g", 1, &[1])])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ShardOwnershipLost { shard_id: 0, .. }),
        "{b}: the writer saw the new token: {err:?}"
    );
}

/// Create refuses a taken id or name; update overwrites by id, refuses a taken name and does
/// nothing for an unknown id; the list is ordered by name.
pub fn namespaces_are_unique_by_id_and_name(s: &dyn Store) {
    let b = s.name();
    let ns = |id: &str, name: &str, data: u8| StoredNamespace {
        id: id.into(),
        name: name.into(),
        data: vec![data],
    };
    s.put_namespace(&ns("1", "beta", 1), true).unwrap();
    s.put_namespace(&ns("2", "alpha", 2), true).unwrap();
    for (dup, why) in [
        (ns("3", "beta", 3), "a taken name"),
        (ns("1", "gamma", 3), "a taken id"),
    ] {
        assert!(
            matches!(
                s.put_namespace(&dup, true),
                Err(StoreError::AlreadyExists(_))
            ),
            "{b}: create with {why}"
        );
    }
    s.put_namespace(&ns("1", "beta", 9), false).unwrap();
    assert!(
        matches!(
            s.put_namespace(&ns("1", "alpha", 9), false),
            Err(StoreError::AlreadyExists(_))
        ),
        "{b}: renamed onto a taken name"
    );
    s.put_namespace(&ns("4", "delta", 4), false).unwrap();
    let list: Vec<_> = s
        .list_namespaces()
        .unwrap()
        .into_iter()
        .map(|n| (n.id, n.name, n.data))
        .collect();
    assert_eq!(
        list,
        vec![
            ("2".into(), "alpha".into(), vec![2]),
            ("1".into(), "beta".into(), vec![9]),
        ],
        "{b}"
    );
}

/// Deleting a run removes its state, history, current pointer and visibility row.
pub async fn deleting_a_run_removes_all_of_it(s: &dyn Store) {
    let b = s.name();
    let r = s.acquire_shards("me", &[0]).unwrap();
    commit(
        s,
        0,
        r[0],
        vec![write("wf-a", "a", 1, &[1, 2]), write("wf-b", "b", 1, &[1])],
    )
    .await
    .unwrap();
    delete(s, 0, r[0], &["a", "never-was"]).await.unwrap();
    assert!(s.get_execution(NS, "a").unwrap().is_none(), "{b}");
    assert!(s.read_events(NS, "a", 1, 10).unwrap().is_empty(), "{b}");
    assert!(s.get_current_run(NS, "wf-a").unwrap().is_none(), "{b}");
    assert_eq!(waking_runs(s, i64::MAX).len(), 1, "{b}");
    assert_eq!(
        s.count_visibility(NS, &everything(false)).unwrap().0,
        1,
        "{b}"
    );
    assert_eq!(
        s.get_current_run(NS, "wf-b").unwrap().as_deref(),
        Some("b"),
        "{b}: other runs stay"
    );
}

/// A batch job id is taken once per namespace; overwrites replace the record; jobs list newest
/// first and page by their `(start_time, job_id)` cursor.
pub fn batch_jobs_are_unique_and_listed_newest_first(s: &dyn Store) {
    let b = s.name();
    let job = |ns: &str, id: &str, t: i64, data: u8| StoredBatchJob {
        namespace_id: ns.into(),
        job_id: id.into(),
        start_time: t,
        data: vec![data],
    };
    s.put_batch_job(&job("n", "a", 10, 1), true).unwrap();
    s.put_batch_job(&job("n", "b", 20, 1), true).unwrap();
    s.put_batch_job(&job("n", "c", 20, 1), true).unwrap();
    s.put_batch_job(&job("m", "a", 30, 1), true).unwrap();
    assert!(
        matches!(
            s.put_batch_job(&job("n", "a", 40, 2), true),
            Err(StoreError::AlreadyExists(_))
        ),
        "{b}"
    );
    s.put_batch_job(&job("n", "a", 10, 3), false).unwrap();
    assert_eq!(
        s.get_batch_job("n", "a").unwrap(),
        Some(job("n", "a", 10, 3)),
        "{b}"
    );
    assert_eq!(s.get_batch_job("n", "z").unwrap(), None, "{b}");
    let ids = |v: Vec<StoredBatchJob>| v.into_iter().map(|j| j.job_id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_batch_jobs("n", 10, None).unwrap()),
        ["c", "b", "a"],
        "{b}"
    );
    let first = s.list_batch_jobs("n", 2, None).unwrap();
    assert_eq!(ids(first.clone()), ["c", "b"], "{b}");
    let last = &first[1];
    let rest = s
        .list_batch_jobs("n", 2, Some((last.start_time, last.job_id.clone())))
        .unwrap();
    assert_eq!(ids(rest), ["a"], "{b}");
}

/// A schedule id is taken once per namespace; overwrites replace the record; schedules list by
/// id and page by the last id; only schedules with a wake time are loaded at start-up; a
/// deleted schedule is gone.
pub fn schedules_are_unique_listed_by_id_and_deleted(s: &dyn Store) {
    let b = s.name();
    let sched = |ns: &str, id: &str, wake: Option<i64>, data: u8| StoredSchedule {
        namespace_id: ns.into(),
        schedule_id: id.into(),
        next_wake: wake,
        data: vec![data],
    };
    s.put_schedule(&sched("n", "b", Some(5), 1), true).unwrap();
    s.put_schedule(&sched("n", "a", None, 1), true).unwrap();
    s.put_schedule(&sched("n", "c", Some(7), 1), true).unwrap();
    s.put_schedule(&sched("m", "a", Some(9), 1), true).unwrap();
    assert!(
        matches!(
            s.put_schedule(&sched("n", "a", None, 2), true),
            Err(StoreError::AlreadyExists(_))
        ),
        "{b}"
    );
    s.put_schedule(&sched("n", "a", Some(3), 3), false).unwrap();
    assert_eq!(
        s.get_schedule("n", "a").unwrap(),
        Some(sched("n", "a", Some(3), 3)),
        "{b}"
    );
    assert_eq!(s.get_schedule("n", "z").unwrap(), None, "{b}");
    let ids = |v: Vec<StoredSchedule>| v.into_iter().map(|j| j.schedule_id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_schedules("n", 10, None).unwrap()),
        ["a", "b", "c"],
        "{b}"
    );
    assert_eq!(
        ids(s.list_schedules("n", 2, None).unwrap()),
        ["a", "b"],
        "{b}"
    );
    assert_eq!(
        ids(s.list_schedules("n", 2, Some("b".into())).unwrap()),
        ["c"],
        "{b}"
    );
    s.put_schedule(&sched("n", "c", None, 4), false).unwrap();
    let mut loaded: Vec<_> = s
        .load_schedules()
        .unwrap()
        .into_iter()
        .map(|x| (x.namespace_id, x.schedule_id))
        .collect();
    loaded.sort();
    assert_eq!(
        loaded,
        [
            ("m".into(), "a".into()),
            ("n".into(), "a".into()),
            ("n".into(), "b".into())
        ],
        "{b}"
    );
    assert!(s.delete_schedule("n", "a").unwrap(), "{b}");
    assert!(!s.delete_schedule("n", "a").unwrap(), "{b}");
    assert_eq!(s.get_schedule("n", "a").unwrap(), None, "{b}");
    assert_eq!(
        ids(s.list_schedules("n", 10, None).unwrap()),
        ["b", "c"],
        "{b}"
    );
}

/// The first id offered is kept; later offers get it back.
pub fn cluster_id_is_kept(s: &dyn Store) {
    let b = s.name();
    assert_eq!(s.cluster_id("first").unwrap(), "first", "{b}");
    assert_eq!(s.cluster_id("second").unwrap(), "first", "{b}");
}

/// The empty query counts (grouped by status when asked) and pages through one namespace's
/// rows: running runs first, then by close time, ties by run id, all descending.
pub async fn the_empty_query_lists_newest_first(s: &dyn Store) {
    let b = s.name();
    let r = s.acquire_shards("me", &[0]).unwrap();
    for w in [
        write("wf-a", "a", 1, &[1]),
        write("wf-b", "b", 2, &[1]),
        write("wf-c", "c", 2, &[1]),
    ] {
        commit(s, 0, r[0], vec![w]).await.unwrap();
    }
    let mut elsewhere = write("wf-z", "z", 1, &[1]);
    elsewhere.namespace_id = "other".into();
    elsewhere.visibility.as_mut().unwrap().namespace_id = "other".into();
    commit(s, 0, r[0], vec![elsewhere]).await.unwrap();

    assert_eq!(
        s.count_visibility(NS, &everything(true)).unwrap(),
        (3, vec![(1, 1), (2, 2)]),
        "{b}"
    );
    assert_eq!(
        s.count_visibility(NS, &everything(false)).unwrap(),
        (3, vec![]),
        "{b}"
    );
    let q = everything(false);
    let page1 = s.list_visibility(NS, &q, 2, None).unwrap();
    let infos = |rows: &[super::ListedRow]| -> Vec<Vec<u8>> {
        rows.iter().map(|(info, _)| info.clone()).collect()
    };
    assert_eq!(
        infos(&page1),
        vec![b"a".to_vec(), b"c".to_vec()],
        "{b}: the running run first, then closed runs by run id descending"
    );
    assert_eq!(page1[1].1, (2_000, "c".to_string()), "{b}: the cursor");
    let page2 = s
        .list_visibility(NS, &q, 2, Some(page1[1].1.clone()))
        .unwrap();
    assert_eq!(infos(&page2), vec![b"b".to_vec()], "{b}");
    let page3 = s
        .list_visibility(NS, &q, 2, Some(page2[0].1.clone()))
        .unwrap();
    assert!(page3.is_empty(), "{b}");
    assert_eq!(
        s.list_visibility(NS, &q, 0, None).unwrap().len(),
        1,
        "{b}: page size 0 is 1"
    );

    // Closing `a` moves it behind the running runs' key, by its close time.
    commit(s, 0, r[0], vec![write("wf-a", "a", 2, &[2])])
        .await
        .unwrap();
    let all = s.list_visibility(NS, &q, 10, None).unwrap();
    assert_eq!(
        infos(&all),
        vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()],
        "{b}"
    );
    assert_eq!(
        s.count_visibility(NS, &everything(true)).unwrap(),
        (3, vec![(2, 3)]),
        "{b}"
    );
}

/// A worker deployment is one record per namespace and name: a put overwrites it, all of them
/// load at start-up, and a deleted one is gone.
pub fn deployments_are_kept_per_namespace_and_name(s: &dyn Store) {
    use super::StoredDeployment;
    let b = s.name();
    let dep = |ns: &str, name: &str, v: u8| StoredDeployment {
        namespace_id: ns.into(),
        name: name.into(),
        data: vec![v],
    };
    assert_eq!(s.load_deployments().unwrap(), vec![], "{b}");
    s.put_deployment(&dep("n", "b", 1)).unwrap();
    s.put_deployment(&dep("n", "a", 1)).unwrap();
    s.put_deployment(&dep("m", "a", 1)).unwrap();
    s.put_deployment(&dep("n", "a", 2)).unwrap();
    let mut all = s.load_deployments().unwrap();
    all.sort_by(|x, y| (&x.namespace_id, &x.name).cmp(&(&y.namespace_id, &y.name)));
    assert_eq!(
        all,
        vec![dep("m", "a", 1), dep("n", "a", 2), dep("n", "b", 1)],
        "{b}"
    );
    assert!(s.delete_deployment("n", "a").unwrap(), "{b}");
    assert!(!s.delete_deployment("n", "a").unwrap(), "{b}");
    assert!(!s.delete_deployment("x", "b").unwrap(), "{b}");
    let mut left = s.load_deployments().unwrap();
    left.sort_by(|x, y| (&x.namespace_id, &x.name).cmp(&(&y.namespace_id, &y.name)));
    assert_eq!(left, vec![dep("m", "a", 1), dep("n", "b", 1)], "{b}");
}

/// Deleting is fenced like writing: a stale owner's delete is refused and deletes nothing; a
/// batch may write one run and delete another atomically.
pub async fn the_fence_guards_deletes(s: &dyn Store) {
    let b = s.name();
    let old = s.acquire_shards("old", &[0]).unwrap();
    commit(s, 0, old[0], vec![write("wf-a", "a", 2, &[1])])
        .await
        .unwrap();
    let new = s.acquire_shards("new", &[0]).unwrap();
    let err = delete(s, 0, old[0], &["a"]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ShardOwnershipLost { shard_id: 0, .. }),
        "{b}: {err:?}"
    );
    assert!(s.get_execution(NS, "a").unwrap().is_some(), "{b}: kept");
    let mut both = WriteBatch::writes(0, new[0], vec![write("wf-b", "b", 1, &[1])]);
    both.deletes.push(RunRef {
        namespace_id: NS.into(),
        run_id: "a".into(),
    });
    s.commit(both).await.unwrap().unwrap();
    assert!(s.get_execution(NS, "a").unwrap().is_none(), "{b}");
    assert!(s.get_execution(NS, "b").unwrap().is_some(), "{b}");
}

/// Visibility queries give the same rows on every backend: system columns, every custom
/// attribute type kept in the JSON object, lists, prefixes, NULLs (a running run has no close
/// time), NOT, IN, BETWEEN, ORDER BY (NULLs first ascending) and counts grouped by status.
pub async fn visibility_queries_filter_order_and_count(s: &dyn Store) {
    let b = s.name();
    let r = s.acquire_shards("me", &[0]).unwrap();
    let row = |run: &str, ty: &str, status: i32, start: i64, sa: &str| {
        let mut w = write(&format!("wf-{run}"), run, status, &[1]);
        let v = w.visibility.as_mut().unwrap();
        v.workflow_type = ty.into();
        v.start_time = start;
        v.execution_time = start;
        v.close_time = (status != 1).then_some(start + 500);
        v.sort_key = visibility_sort_key(start, v.close_time);
        v.search_attributes = sa.into();
        w
    };
    let rows = [
        row(
            "a",
            "order",
            1,
            100,
            r#"{"CustomKeywordField":"red","CustomIntField":5,"CustomBoolField":true,"Tags":["x","y"],"CustomDoubleField":1.5}"#,
        ),
        row(
            "b",
            "order",
            2,
            200,
            r#"{"CustomKeywordField":"blue","CustomIntField":10,"CustomBoolField":false,"Tags":["y"],"CustomDatetimeField":1000}"#,
        ),
        row(
            "c",
            "refund",
            3,
            300,
            r#"{"CustomKeywordField":"red_50%","CustomIntField":-3,"CustomDoubleField":2}"#,
        ),
        row("d", "order-x", 2, 400, "{}"),
    ];
    commit(s, 0, r[0], rows.to_vec()).await.unwrap();
    let ids = |q: &str| -> Vec<String> {
        s.list_visibility(NS, &query(q), 100, None)
            .unwrap_or_else(|e| panic!("{b}: {q}: {e}"))
            .into_iter()
            .map(|(info, _)| String::from_utf8(info).unwrap())
            .collect()
    };
    let sorted = |q: &str| -> Vec<String> {
        let mut v = ids(q);
        v.sort();
        v
    };
    let cases: &[(&str, &[&str])] = &[
        ("WorkflowType = 'order'", &["a", "b"]),
        ("WorkflowType != 'order'", &["c", "d"]),
        ("WorkflowType STARTS_WITH 'order'", &["a", "b", "d"]),
        ("ExecutionStatus = 'Running'", &["a"]),
        (
            "ExecutionStatus IN ('Completed', 'Failed')",
            &["b", "c", "d"],
        ),
        ("StartTime BETWEEN 200 AND 300", &["b", "c"]),
        ("StartTime NOT BETWEEN 200 AND 300", &["a", "d"]),
        ("CloseTime IS NULL", &["a"]),
        ("CloseTime IS NOT NULL AND CloseTime <= 800", &["b", "c"]),
        ("CustomKeywordField = 'red'", &["a"]),
        ("CustomKeywordField STARTS_WITH 'red_5'", &["c"]),
        ("CustomKeywordField STARTS_WITH 'red%'", &[]),
        ("CustomKeywordField NOT IN ('red', 'blue')", &["c"]),
        ("CustomKeywordField IS NULL", &["d"]),
        ("CustomIntField > 0", &["a", "b"]),
        ("CustomIntField <= -3", &["c"]),
        ("CustomIntField BETWEEN 5 AND 10", &["a", "b"]),
        ("CustomDoubleField >= 1.5", &["a", "c"]),
        ("CustomBoolField = true", &["a"]),
        ("CustomBoolField = false", &["b"]),
        ("CustomDatetimeField = 1000", &["b"]),
        ("Tags = 'y'", &["a", "b"]),
        ("Tags = 'x' OR CustomIntField = -3", &["a", "c"]),
        ("Tags IN ('x', 'z')", &["a"]),
        ("Tags != 'x'", &["b", "c", "d"]),
        ("NOT (CustomIntField > 0)", &["c"]),
        (
            "(WorkflowType = 'order' OR WorkflowType = 'refund') AND NOT CustomBoolField = true",
            &["b"],
        ),
    ];
    for (q, want) in cases {
        assert_eq!(sorted(q), *want, "{b}: {q}");
        let (n, _) = s.count_visibility(NS, &query(q)).unwrap();
        assert_eq!(n, want.len() as i64, "{b}: count {q}");
    }
    assert_eq!(ids("ORDER BY StartTime ASC"), ["a", "b", "c", "d"], "{b}");
    assert_eq!(
        ids("ORDER BY CustomIntField DESC"),
        ["b", "a", "c", "d"],
        "{b}"
    );
    assert_eq!(ids("ORDER BY CloseTime ASC"), ["a", "b", "c", "d"], "{b}");
    assert_eq!(ids("ORDER BY CloseTime DESC"), ["d", "c", "b", "a"], "{b}");
    assert_eq!(
        s.count_visibility(
            NS,
            &query("WorkflowType STARTS_WITH 'order' GROUP BY ExecutionStatus")
        )
        .unwrap(),
        (3, vec![(1, 1), (2, 2)]),
        "{b}"
    );
}

fn member(node: &str, session: &str) -> Member {
    Member {
        node: node.into(),
        session: session.into(),
        address: format!("{node}:7233"),
    }
}

/// A node name is held by one live session; a stale one is taken over (and its heartbeat then
/// fails). Leadership goes to one candidate at a time, is renewed by its holder, passes on when
/// its lease runs out or it resigns, and the old holder cannot renew it afterwards.
pub fn membership_and_leadership(s: &dyn Store) {
    let b = s.name();
    let pause = || std::thread::sleep(std::time::Duration::from_millis(30));
    let (a1, a2, c) = (member("a", "s1"), member("a", "s2"), member("c", "s3"));
    s.join(&a1, 60_000).unwrap();
    s.join(&a1, 60_000).unwrap();
    s.join(&c, 60_000).unwrap();
    let err = s.join(&a2, 60_000).unwrap_err();
    assert!(
        matches!(&err, StoreError::NodeNameTaken { node, .. } if node == "a"),
        "{b}: {err:?}"
    );
    assert_eq!(
        s.members(60_000).unwrap(),
        vec![a1.clone(), c.clone()],
        "{b}"
    );
    assert!(s.heartbeat(&a1).unwrap(), "{b}");
    pause();
    // a1's heartbeat is older than 10 ms: a2 takes the name over, and a1 learns it.
    s.join(&a2, 10).unwrap();
    assert!(
        !s.heartbeat(&a1).unwrap(),
        "{b}: the old session lost its row"
    );
    assert!(s.heartbeat(&a2).unwrap(), "{b}");
    assert_eq!(
        s.members(10).unwrap(),
        vec![a2.clone()],
        "{b}: c is stale by now"
    );
    s.leave(&a1).unwrap();
    assert_eq!(
        s.members(60_000).unwrap().len(),
        2,
        "{b}: a stale session cannot remove a2"
    );
    s.leave(&a2).unwrap();
    assert_eq!(s.members(60_000).unwrap(), vec![c.clone()], "{b}");

    assert_eq!(s.leader().unwrap(), None, "{b}");
    if s.exclusive() {
        // One process only: whoever asks leads, and the leader row says who.
        assert!(s.try_lead(&a2, 60_000).unwrap(), "{b}");
        assert!(s.try_lead(&c, 60_000).unwrap(), "{b}");
        assert_eq!(s.leader().unwrap().unwrap().node, "c", "{b}");
        s.resign(&c).unwrap();
        assert!(s.leader().unwrap().unwrap().expires_in_ms < 0, "{b}");
        return;
    }
    assert!(s.try_lead(&a2, 60_000).unwrap(), "{b}");
    assert!(
        !s.try_lead(&c, 60_000).unwrap(),
        "{b}: one leader at a time"
    );
    assert!(s.try_lead(&a2, 20).unwrap(), "{b}: the leader renews");
    let l = s.leader().unwrap().unwrap();
    assert_eq!(
        (l.node.as_str(), l.address.as_str()),
        ("a", "a:7233"),
        "{b}"
    );
    assert!(l.expires_in_ms <= 20, "{b}: {l:?}");
    pause();
    assert!(s.leader().unwrap().unwrap().expires_in_ms < 0, "{b}");
    assert!(
        s.try_lead(&c, 60_000).unwrap(),
        "{b}: an expired lease passes on"
    );
    assert!(
        !s.try_lead(&a2, 60_000).unwrap(),
        "{b}: the old leader cannot renew"
    );
    s.resign(&a2).unwrap();
    assert_eq!(
        s.leader().unwrap().unwrap().node,
        "c",
        "{b}: only the holder resigns"
    );
    s.resign(&c).unwrap();
    assert!(
        s.try_lead(&a2, 60_000).unwrap(),
        "{b}: a resigned lease passes on at once"
    );
}

/// A new cluster takes the requested count (or 16); the count can be raised (fencing every
/// shard's owner), never lowered.
pub fn the_shard_count_only_grows(s: &dyn Store) {
    let b = s.name();
    assert_eq!(s.shard_count(None).unwrap(), super::DEFAULT_SHARDS, "{b}");
    assert_eq!(s.shard_count(Some(16)).unwrap(), 16, "{b}");
    assert_eq!(s.shard_count(Some(32)).unwrap(), 32, "{b}");
    assert_eq!(s.shard_count(None).unwrap(), 32, "{b}");
    let err = s.shard_count(Some(8)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::ShardCountLowered {
                current: 32,
                requested: 8
            }
        ),
        "{b}: {err:?}"
    );
    assert_eq!(s.shard_count(None).unwrap(), 32, "{b}");
    // Raising the count fences every shard's owner (runs change shards); asking for the count
    // it already has does not.
    let before = s.acquire_shards("me", &[0, 1]).unwrap();
    assert_eq!(s.shard_count(Some(32)).unwrap(), 32, "{b}");
    let same = s.acquire_shards("me", &[0, 1]).unwrap();
    assert_eq!(same, vec![before[0] + 1, before[1] + 1], "{b}");
    assert_eq!(s.shard_count(Some(64)).unwrap(), 64, "{b}");
    let after = s.acquire_shards("me", &[0, 1]).unwrap();
    assert_eq!(
        after,
        vec![same[0] + 2, same[1] + 2],
        "{b}: raising bumped every token"
    );
}
