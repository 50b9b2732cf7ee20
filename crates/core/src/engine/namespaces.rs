//! Namespaces and their search attribute registries: register, describe, list, update, and the
//! OperatorService search attribute calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use perdure_proto::api::enums::v1::{ArchivalState, IndexedValueType, NamespaceState};
use perdure_proto::api::namespace::v1::{NamespaceConfig, NamespaceInfo, namespace_info};
use perdure_proto::api::replication::v1::{ClusterReplicationConfig, NamespaceReplicationConfig};
use perdure_proto::api::workflowservice::v1::{
    DeleteWorkflowExecutionRequest, DescribeNamespaceResponse, ListWorkflowExecutionsRequest,
    RegisterNamespaceRequest, UpdateNamespaceRequest,
};
use prost::Message;

use super::Engine;
use crate::clock::convert::pdur;
use crate::error::{Error, Result};
use crate::info::indexed_type;
use crate::state::NamespaceRecord;
use crate::store::StoredNamespace;

/// Search attributes every namespace created at start-up gets, as on Temporal's dev server.
const DEV_CUSTOM_ATTRIBUTES: &[(&str, IndexedValueType)] = &[
    ("CustomKeywordField", IndexedValueType::Keyword),
    ("CustomStringField", IndexedValueType::Text),
    ("CustomTextField", IndexedValueType::Text),
    ("CustomIntField", IndexedValueType::Int),
    ("CustomDatetimeField", IndexedValueType::Datetime),
    ("CustomDoubleField", IndexedValueType::Double),
    ("CustomBoolField", IndexedValueType::Bool),
];

/// A namespace in memory.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub id: String,
    pub name: String,
    pub record: NamespaceRecord,
}

impl Namespace {
    /// Temporal starts new workflows only in a registered namespace (not a deprecated or
    /// deleted one).
    pub fn require_registered(&self) -> Result<()> {
        let state = self
            .record
            .info
            .as_ref()
            .map(|i| i.state)
            .unwrap_or_default();
        if state == NamespaceState::Registered as i32 {
            return Ok(());
        }
        let name = NamespaceState::try_from(state)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("NAMESPACE_STATE_")
                    .to_string()
            })
            .unwrap_or_default();
        let mut shown = name.to_lowercase();
        if let Some(f) = shown.get_mut(0..1) {
            f.make_ascii_uppercase();
        }
        Err(Error::FailedPrecondition(format!(
            "Namespace has invalid state: {shown}. Must be Registered."
        )))
    }

    /// Type of a search attribute usable in this namespace (system or custom).
    pub fn sa_type(&self, name: &str) -> Option<IndexedValueType> {
        if let Some(t) = self.record.search_attributes.get(name) {
            return IndexedValueType::try_from(*t).ok();
        }
        system_sa_type(name)
    }

    pub fn describe(&self) -> DescribeNamespaceResponse {
        let mut info = self.record.info.clone().unwrap_or_default();
        // What the SDKs may rely on here (they check before using a feature).
        info.capabilities = Some(namespace_info::Capabilities {
            eager_workflow_start: true,
            sync_update: true,
            async_update: true,
            worker_heartbeats: true,
            standalone_activities: true,
            standalone_activity_start_delay: true,
            ..Default::default()
        });
        DescribeNamespaceResponse {
            namespace_info: Some(info),
            config: self.record.config.clone(),
            replication_config: Some(NamespaceReplicationConfig {
                active_cluster_name: "active".into(),
                clusters: vec![ClusterReplicationConfig {
                    cluster_name: "active".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Type of a system search attribute.
pub fn system_sa_type(name: &str) -> Option<IndexedValueType> {
    perdure_query::system_attributes()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| indexed_type(*t))
}

#[derive(Default)]
pub(crate) struct Registry {
    by_name: HashMap<String, Arc<Namespace>>,
    by_id: HashMap<String, Arc<Namespace>>,
}

impl Registry {
    fn insert(&mut self, ns: Namespace) {
        let ns = Arc::new(ns);
        self.by_name.insert(ns.name.clone(), ns.clone());
        self.by_id.insert(ns.id.clone(), ns);
    }
}

fn new_record(req: &RegisterNamespaceRequest, id: &str, dev: bool) -> NamespaceRecord {
    let retention = req
        .workflow_execution_retention_period
        .unwrap_or(pdur(Duration::from_secs(24 * 3600)));
    NamespaceRecord {
        info: Some(NamespaceInfo {
            name: req.namespace.clone(),
            state: NamespaceState::Registered as i32,
            description: req.description.clone(),
            owner_email: req.owner_email.clone(),
            data: req.data.clone(),
            id: id.to_string(),
            supports_schedules: false,
            ..Default::default()
        }),
        config: Some(NamespaceConfig {
            workflow_execution_retention_ttl: Some(retention),
            history_archival_state: ArchivalState::Disabled as i32,
            visibility_archival_state: ArchivalState::Disabled as i32,
            ..Default::default()
        }),
        search_attributes: if dev {
            DEV_CUSTOM_ATTRIBUTES
                .iter()
                .map(|(n, t)| (n.to_string(), *t as i32))
                .collect()
        } else {
            HashMap::new()
        },
    }
}

fn stored(ns: &Namespace) -> StoredNamespace {
    StoredNamespace {
        id: ns.id.clone(),
        name: ns.name.clone(),
        data: ns.record.encode_to_vec(),
    }
}

/// Validates a namespace name the way Temporal does (letters, digits, `-`, `_`, `.`).
fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "Namespace name {name:?} is invalid: use 1-255 letters, digits, '-', '_' or '.'."
        )))
    }
}

impl Engine {
    /// Reads the namespaces at start-up; the leader creates the configured ones that are missing.
    pub(crate) async fn load_namespaces(&self) -> Result<()> {
        self.reload_namespaces().await?;
        if !self.is_leader() {
            // The leader creates them; this engine follows (see `reload_namespaces`).
            return Ok(());
        }
        for name in self.inner.config.namespaces.clone() {
            if self.inner.namespaces.read().by_name.contains_key(&name) {
                continue;
            }
            let req = RegisterNamespaceRequest {
                namespace: name.clone(),
                ..Default::default()
            };
            self.register_namespace_inner(req, true).await?;
            tracing::info!(namespace = %name, "created namespace");
        }
        Ok(())
    }

    /// Reads every namespace again and replaces the registry with them: how an engine that does
    /// not lead follows the namespace changes the leader makes.
    pub async fn reload_namespaces(&self) -> Result<()> {
        let s = self.inner.store.clone();
        let rows = tokio::task::spawn_blocking(move || s.list_namespaces())
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let mut reg = Registry::default();
        for r in rows {
            let record = NamespaceRecord::decode(r.data.as_slice())
                .map_err(|e| Error::Internal(format!("corrupt namespace record: {e}")))?;
            reg.insert(Namespace {
                id: r.id,
                name: r.name,
                record,
            });
        }
        *self.inner.namespaces.write() = reg;
        Ok(())
    }

    /// The namespace called `name`, or NOT_FOUND.
    pub fn namespace(&self, name: &str) -> Result<Arc<Namespace>> {
        self.inner
            .namespaces
            .read()
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NamespaceNotFound(name.to_string()))
    }

    pub fn namespace_by_id(&self, id: &str) -> Option<Arc<Namespace>> {
        self.inner.namespaces.read().by_id.get(id).cloned()
    }

    pub async fn register_namespace(&self, req: RegisterNamespaceRequest) -> Result<()> {
        let valid_retention = req
            .workflow_execution_retention_period
            .is_some_and(|d| d.seconds > 0 || d.nanos > 0);
        if !valid_retention {
            return Err(Error::InvalidArgument(
                "A valid retention period is not set on request.".into(),
            ));
        }
        self.register_namespace_inner(req, false).await
    }

    async fn register_namespace_inner(
        &self,
        req: RegisterNamespaceRequest,
        dev: bool,
    ) -> Result<()> {
        validate_name(&req.namespace)?;
        if self
            .inner
            .namespaces
            .read()
            .by_name
            .contains_key(&req.namespace)
        {
            return Err(Error::NamespaceAlreadyExists(req.namespace));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let ns = Namespace {
            id: id.clone(),
            name: req.namespace.clone(),
            record: new_record(&req, &id, dev),
        };
        let s = self.inner.store.clone();
        let row = stored(&ns);
        tokio::task::spawn_blocking(move || s.put_namespace(&row, true))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| match e {
                crate::store::StoreError::AlreadyExists(_) => {
                    Error::NamespaceAlreadyExists(req.namespace.clone())
                }
                e => e.into(),
            })?;
        self.inner.namespaces.write().insert(ns);
        Ok(())
    }

    pub fn list_namespaces(&self) -> Vec<DescribeNamespaceResponse> {
        let reg = self.inner.namespaces.read();
        let mut v: Vec<_> = reg.by_name.values().map(|n| n.describe()).collect();
        v.sort_by(|a, b| {
            let n = |x: &DescribeNamespaceResponse| {
                x.namespace_info
                    .as_ref()
                    .map(|i| i.name.clone())
                    .unwrap_or_default()
            };
            n(a).cmp(&n(b))
        });
        v
    }

    pub async fn update_namespace(
        &self,
        req: UpdateNamespaceRequest,
    ) -> Result<DescribeNamespaceResponse> {
        let ns = self.namespace(&req.namespace)?;
        let mut ns = (*ns).clone();
        if let Some(u) = &req.update_info {
            let info = ns.record.info.get_or_insert_with(Default::default);
            if !u.description.is_empty() {
                info.description = u.description.clone();
            }
            if !u.owner_email.is_empty() {
                info.owner_email = u.owner_email.clone();
            }
            for (k, v) in &u.data {
                info.data.insert(k.clone(), v.clone());
            }
        }
        if let Some(c) = &req.config {
            let cfg = ns.record.config.get_or_insert_with(Default::default);
            if c.workflow_execution_retention_ttl.is_some() {
                cfg.workflow_execution_retention_ttl = c.workflow_execution_retention_ttl;
            }
        }
        self.save_namespace(ns.clone()).await?;
        Ok(ns.describe())
    }

    /// DeprecateNamespace: the namespace stays readable and its runs go on, but no new workflow
    /// starts in it.
    pub async fn deprecate_namespace(&self, name: &str) -> Result<()> {
        let mut ns = (*self.namespace(name)?).clone();
        ns.record.info.get_or_insert_with(Default::default).state =
            NamespaceState::Deprecated as i32;
        self.save_namespace(ns).await
    }

    /// DeleteNamespace (OperatorService), as Temporal does it: the namespace is renamed
    /// `<name>-deleted-<first 5 characters of its id>` and marked deleted at once, so its name can
    /// be registered again; a background task then terminates and deletes every execution in it.
    /// Returns the new name.
    pub async fn delete_namespace(&self, name: &str) -> Result<String> {
        if name == "temporal-system" {
            return Err(Error::InvalidArgument(
                "Unable to delete system namespace temporal-system.".into(),
            ));
        }
        let old = self.namespace(name)?;
        let mut ns = (*old).clone();
        let suffix: String = ns.id.chars().take(5).collect();
        ns.name = format!("{name}-deleted-{suffix}");
        let info = ns.record.info.get_or_insert_with(Default::default);
        info.name = ns.name.clone();
        info.state = NamespaceState::Deleted as i32;
        let deleted = ns.name.clone();
        self.save_namespace(ns).await?;
        self.inner.namespaces.write().by_name.remove(name);
        let me = self.clone();
        let ns_name = deleted.clone();
        tokio::spawn(async move {
            if let Err(e) = me.delete_all_executions(&ns_name).await {
                tracing::warn!(namespace = %ns_name, %e, "deleting the executions of a deleted namespace failed");
            }
        });
        Ok(deleted)
    }

    /// Terminates and deletes every execution of a namespace, a page at a time.
    async fn delete_all_executions(&self, namespace: &str) -> Result<()> {
        loop {
            let page = self
                .list(ListWorkflowExecutionsRequest {
                    namespace: namespace.to_string(),
                    page_size: 1000,
                    ..Default::default()
                })
                .await?;
            let mut deleted = 0;
            for e in page.executions.into_iter().filter_map(|e| e.execution) {
                match self
                    .delete_workflow(DeleteWorkflowExecutionRequest {
                        namespace: namespace.to_string(),
                        workflow_execution: Some(e),
                    })
                    .await
                {
                    Ok(()) => deleted += 1,
                    Err(Error::NotFound(_)) => {}
                    Err(err) => return Err(err),
                }
            }
            // An empty page, or one of rows that are already gone: done.
            if deleted == 0 {
                return Ok(());
            }
        }
    }

    async fn save_namespace(&self, ns: Namespace) -> Result<()> {
        let s = self.inner.store.clone();
        let row = stored(&ns);
        tokio::task::spawn_blocking(move || s.put_namespace(&row, false))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        self.inner.namespaces.write().insert(ns);
        Ok(())
    }

    /// Registers custom search attributes (name -> IndexedValueType).
    pub async fn add_search_attributes(
        &self,
        namespace: &str,
        attrs: HashMap<String, i32>,
    ) -> Result<()> {
        let ns = self.namespace(namespace)?;
        let mut ns = (*ns).clone();
        for (name, t) in attrs {
            let ty = IndexedValueType::try_from(t)
                .ok()
                .filter(|t| *t != IndexedValueType::Unspecified)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("Unknown search attribute type {t} for {name}."))
                })?;
            if system_sa_type(&name).is_some() || name.starts_with("Temporal") {
                return Err(Error::InvalidArgument(format!(
                    "Search attribute {name} is reserved by system."
                )));
            }
            // Temporal takes nearly any name (`my-key-1`, `bad key`; a query quotes it in
            // backticks). Perdure refuses only what it could not name in a query or a JSON path.
            if name.is_empty()
                || name.len() > self.inner.config.limits.id_length
                || name.chars().any(|c| c.is_control() || c == '`' || c == '"')
            {
                return Err(Error::InvalidArgument(format!(
                    "Search attribute name {name:?} is invalid."
                )));
            }
            match ns.record.search_attributes.get(&name) {
                Some(existing) if *existing != ty as i32 => {
                    return Err(Error::AlreadyExists(format!(
                        "Search attribute {name} already exists with another type."
                    )));
                }
                _ => {
                    ns.record.search_attributes.insert(name, ty as i32);
                }
            }
        }
        self.save_namespace(ns).await
    }

    pub async fn remove_search_attributes(
        &self,
        namespace: &str,
        names: Vec<String>,
    ) -> Result<()> {
        let ns = self.namespace(namespace)?;
        let mut ns = (*ns).clone();
        for n in names {
            if ns.record.search_attributes.remove(&n).is_none() {
                return Err(Error::NotFound(format!(
                    "Search attribute {n} doesn't exist."
                )));
            }
        }
        self.save_namespace(ns).await
    }

    /// (custom, system) search attributes of a namespace.
    pub fn search_attributes(
        &self,
        namespace: &str,
    ) -> Result<(HashMap<String, i32>, HashMap<String, i32>)> {
        let ns = self.namespace(namespace)?;
        let system = perdure_query::system_attributes()
            .iter()
            .map(|(n, t)| (n.to_string(), indexed_type(*t) as i32))
            .collect();
        Ok((ns.record.search_attributes.clone(), system))
    }
}
