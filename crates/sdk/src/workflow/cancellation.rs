//! Cancellation: [`CancellationScope`]s (cancelled together with what was started through their
//! context) and the cancellation of the whole workflow.

use std::cell::RefCell;
use std::rc::Rc;

use super::WfContext;

/// A cancellation scope: cancelling it cancels every activity, timer and child workflow started
/// through its context (and its nested scopes), like the TypeScript SDK's `CancellationScope`.
#[derive(Clone, Default)]
pub struct CancellationScope(Rc<ScopeInner>);

#[derive(Default)]
struct ScopeInner {
    cancelled: std::cell::Cell<bool>,
    members: RefCell<Vec<Member>>,
    parent: Option<CancellationScope>,
}

#[derive(Clone)]
pub(super) enum Member {
    Activity(u32),
    Timer(u32),
    Scope(CancellationScope),
}

impl CancellationScope {
    /// Whether the scope (or an enclosing one) was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.get() || self.0.parent.as_ref().is_some_and(|p| p.is_cancelled())
    }
}

impl WfContext {
    /// A context whose activities, timers and nested scopes are cancelled together by
    /// [`cancel_scope`](Self::cancel_scope): run a part of the workflow with it.
    pub fn cancellation_scope(&self) -> (WfContext, CancellationScope) {
        let scope = CancellationScope(Rc::new(ScopeInner {
            parent: self.scope.clone(),
            ..Default::default()
        }));
        self.enlist(Member::Scope(scope.clone()));
        let ctx = WfContext {
            state: self.state.clone(),
            scope: Some(scope.clone()),
        };
        (ctx, scope)
    }

    /// Cancels a scope: its pending activities and timers are cancelled (as with their handles),
    /// conditions awaited through its context fail with
    /// [`WorkflowError::Cancelled`](super::WorkflowError::Cancelled), and work started in it
    /// later is cancelled at once.
    pub fn cancel_scope(&self, scope: &CancellationScope) {
        if scope.0.cancelled.replace(true) {
            return;
        }
        self.state.borrow_mut().progress += 1;
        let members = scope.0.members.borrow().clone();
        for m in members {
            match m {
                Member::Activity(seq) => self.cancel_activity(seq),
                Member::Timer(seq) => self.cancel_timer(seq),
                Member::Scope(s) => self.cancel_scope(&s),
            }
        }
    }

    /// Records work in the current scope; in a cancelled scope it is cancelled at once.
    pub(super) fn enlist(&self, m: Member) {
        let Some(scope) = &self.scope else { return };
        if scope.is_cancelled() {
            match &m {
                Member::Activity(seq) => self.cancel_activity(*seq),
                Member::Timer(seq) => self.cancel_timer(*seq),
                Member::Scope(s) => self.cancel_scope(s),
            }
        }
        scope.0.members.borrow_mut().push(m);
    }

    pub(super) fn scope_cancelled(&self) -> bool {
        self.scope.as_ref().is_some_and(|s| s.is_cancelled())
    }

    /// Marks every pending activity and timer cancelled (workflow cancellation).
    pub(crate) fn cancel_everything(&self) {
        let (acts, timers): (Vec<u32>, Vec<u32>) = {
            let mut s = self.state.borrow_mut();
            s.cancel_requested = true;
            s.progress += 1;
            (
                s.activities
                    .iter()
                    .filter(|(_, a)| a.result.is_none())
                    .map(|(k, _)| *k)
                    .collect(),
                s.timers
                    .iter()
                    .filter(|(_, t)| t.fired.is_none())
                    .map(|(k, _)| *k)
                    .collect(),
            )
        };
        let mut acts = acts;
        acts.sort();
        let mut timers = timers;
        timers.sort();
        for a in acts {
            self.cancel_activity(a);
        }
        for t in timers {
            self.cancel_timer(t);
        }
    }
}
