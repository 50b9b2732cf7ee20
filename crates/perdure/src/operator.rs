//! `perdure operator ...`: namespaces (create, list, describe, update), custom search
//! attributes (create, list) and the cluster's health, as the `temporal operator` commands.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use perdure_sdk::proto::enums::v1::{IndexedValueType, NamespaceState};
use perdure_sdk::proto::namespace::v1::{NamespaceConfig, UpdateNamespaceInfo};
use perdure_sdk::proto::operatorservice::v1 as ops;
use perdure_sdk::proto::workflowservice::v1 as ws;

use crate::cli::{Ctx, Output, parse_duration, pdur};
use crate::output::{kv, message_json, print_json_text, table};
use crate::output::{out, outln};

/// `perdure operator` subcommands.
#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Create, list, describe and update namespaces.
    Namespace {
        #[command(subcommand)]
        command: NamespaceCommand,
    },
    /// Add and list custom search attributes.
    SearchAttribute {
        #[command(subcommand)]
        command: SearchAttributeCommand,
    },
    /// The server's health.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

/// `perdure operator cluster` subcommands.
#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Print SERVING when the server reports its WorkflowService healthy; else fail.
    Health,
}

/// `perdure operator namespace` subcommands.
#[derive(Subcommand)]
pub enum NamespaceCommand {
    /// Register a namespace (its name as argument or with -n).
    Create(NamespaceArgs),
    /// List namespaces.
    List,
    /// Describe a namespace (its name as argument or with -n).
    Describe(NamespaceName),
    /// Update a namespace's description, owner email, retention or data.
    Update(NamespaceArgs),
}

/// `perdure operator search-attribute` subcommands.
#[derive(Subcommand)]
pub enum SearchAttributeCommand {
    /// Add custom search attributes (in the namespace given with -n).
    Create(SearchAttributeArgs),
    /// List the search attributes of the namespace.
    List,
}

#[derive(Args)]
pub struct NamespaceName {
    /// Namespace name (default: the -n/--namespace flag).
    name: Option<String>,
}

#[derive(Args)]
pub struct NamespaceArgs {
    #[command(flatten)]
    name: NamespaceName,
    /// Namespace description.
    #[arg(long)]
    description: Option<String>,
    /// Owner's email address.
    #[arg(long)]
    email: Option<String>,
    /// How long closed workflows are kept (e.g. 72h).
    #[arg(long, value_parser = parse_duration)]
    retention: Option<Duration>,
    /// KEY=VALUE data (repeatable).
    #[arg(long)]
    data: Vec<String>,
}

#[derive(Args)]
pub struct SearchAttributeArgs {
    /// Search attribute name (repeatable, one --type each).
    #[arg(long, required = true)]
    name: Vec<String>,
    /// Text, Keyword, Int, Double, Bool, Datetime or KeywordList (one per --name).
    #[arg(long = "type", required = true)]
    types: Vec<String>,
}

const RPC_TIMEOUT: Duration = Duration::from_secs(30);

fn req<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(RPC_TIMEOUT);
    r
}

/// Runs one `perdure operator` command.
pub async fn run(ctx: Ctx, cmd: OperatorCommand) -> anyhow::Result<()> {
    match cmd {
        OperatorCommand::Namespace { command } => match command {
            NamespaceCommand::Create(a) => create(&ctx, a).await,
            NamespaceCommand::List => list(&ctx).await,
            NamespaceCommand::Describe(n) => describe(&ctx, n).await,
            NamespaceCommand::Update(a) => update(&ctx, a).await,
        },
        OperatorCommand::SearchAttribute { command } => match command {
            SearchAttributeCommand::Create(a) => add_attributes(&ctx, a).await,
            SearchAttributeCommand::List => list_attributes(&ctx).await,
        },
        OperatorCommand::Cluster {
            command: ClusterCommand::Health,
        } => {
            if ctx.client.check_health().await? {
                outln!("SERVING");
                Ok(())
            } else {
                bail!("the server at {} reports NOT_SERVING", ctx.address)
            }
        }
    }
}

impl NamespaceName {
    fn get(&self, ctx: &Ctx) -> String {
        self.name.clone().unwrap_or_else(|| ctx.namespace.clone())
    }
}

fn data(pairs: &[String]) -> anyhow::Result<HashMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--data {p:?} is not KEY=VALUE"))
        })
        .collect()
}

async fn create(ctx: &Ctx, a: NamespaceArgs) -> anyhow::Result<()> {
    let name = a.name.get(ctx);
    let r = ws::RegisterNamespaceRequest {
        namespace: name.clone(),
        description: a.description.unwrap_or_default(),
        owner_email: a.email.unwrap_or_default(),
        workflow_execution_retention_period: Some(pdur(
            a.retention.unwrap_or(Duration::from_secs(72 * 3600)),
        )),
        data: data(&a.data)?,
        ..Default::default()
    };
    ctx.client
        .workflow_service()
        .register_namespace(req(r))
        .await
        .map_err(|s| ctx.status(s, None))?;
    outln!("Namespace {name} successfully registered.");
    Ok(())
}

async fn update(ctx: &Ctx, a: NamespaceArgs) -> anyhow::Result<()> {
    let name = a.name.get(ctx);
    let r = ws::UpdateNamespaceRequest {
        namespace: name.clone(),
        update_info: Some(UpdateNamespaceInfo {
            description: a.description.unwrap_or_default(),
            owner_email: a.email.unwrap_or_default(),
            data: data(&a.data)?,
            ..Default::default()
        }),
        config: a.retention.map(|r| NamespaceConfig {
            workflow_execution_retention_ttl: Some(pdur(r)),
            ..Default::default()
        }),
        ..Default::default()
    };
    ctx.client
        .workflow_service()
        .update_namespace(req(r))
        .await
        .map_err(|s| ctx.status(s, None))?;
    outln!("Namespace {name} update succeeded.");
    Ok(())
}

const DESCRIBE: &str = "temporal.api.workflowservice.v1.DescribeNamespaceResponse";

fn state_name(state: i32) -> String {
    NamespaceState::try_from(state)
        .map(|s| {
            let n = s.as_str_name().trim_start_matches("NAMESPACE_STATE_");
            n[..1].to_string() + &n[1..].to_lowercase()
        })
        .unwrap_or_else(|_| state.to_string())
}

fn retention(d: &ws::DescribeNamespaceResponse) -> String {
    d.config
        .as_ref()
        .and_then(|c| c.workflow_execution_retention_ttl.as_ref())
        .map(|t| {
            let h = t.seconds / 3600;
            if t.seconds % 3600 == 0 {
                format!("{h}h")
            } else {
                format!("{}s", t.seconds)
            }
        })
        .unwrap_or_default()
}

async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut token = Vec::new();
    loop {
        let r = ws::ListNamespacesRequest {
            page_size: 100,
            next_page_token: token,
            namespace_filter: None,
        };
        let resp = ctx
            .client
            .workflow_service()
            .list_namespaces(req(r))
            .await
            .map_err(|s| ctx.status(s, None))?
            .into_inner();
        all.extend(resp.namespaces);
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    match ctx.output {
        Output::Table => {
            let rows = all
                .iter()
                .map(|d| {
                    let info = d.namespace_info.clone().unwrap_or_default();
                    vec![
                        info.name.into(),
                        state_name(info.state).into(),
                        retention(d).into(),
                        info.description.into(),
                    ]
                })
                .collect();
            out!(
                "{}",
                table(
                    &["Name", "State", "Retention", "Description"],
                    rows,
                    ctx.color
                )
            );
        }
        Output::Json => {
            let vals = all
                .iter()
                .map(|d| message_json(DESCRIBE, d))
                .collect::<anyhow::Result<Vec<_>>>()?;
            print_json_text(&format!("[{}]", vals.join(",")), true)?;
        }
        Output::Jsonl => {
            for d in &all {
                print_json_text(&message_json(DESCRIBE, d)?, false)?;
            }
        }
    }
    Ok(())
}

async fn describe(ctx: &Ctx, n: NamespaceName) -> anyhow::Result<()> {
    let name = n.get(ctx);
    let r = ws::DescribeNamespaceRequest {
        namespace: name.clone(),
        ..Default::default()
    };
    let d = ctx
        .client
        .workflow_service()
        .describe_namespace(req(r))
        .await
        .map_err(|s| ctx.status(s, None))?
        .into_inner();
    if ctx.output != Output::Table {
        return print_json_text(&message_json(DESCRIBE, &d)?, ctx.output == Output::Json);
    }
    let info = d.namespace_info.clone().unwrap_or_default();
    let mut data: Vec<_> = info.data.iter().map(|(k, v)| format!("{k}={v}")).collect();
    data.sort();
    out!(
        "{}",
        kv(&[
            ("Name", info.name.clone()),
            ("Id", info.id.clone()),
            ("State", state_name(info.state)),
            ("Description", info.description.clone()),
            ("OwnerEmail", info.owner_email.clone()),
            ("Data", data.join(", ")),
            ("Retention", retention(&d)),
            ("IsGlobalNamespace", d.is_global_namespace.to_string()),
        ])
    );
    Ok(())
}

fn value_type(s: &str) -> anyhow::Result<IndexedValueType> {
    let t = match s.to_ascii_lowercase().as_str() {
        "text" => IndexedValueType::Text,
        "keyword" => IndexedValueType::Keyword,
        "int" => IndexedValueType::Int,
        "double" => IndexedValueType::Double,
        "bool" => IndexedValueType::Bool,
        "datetime" => IndexedValueType::Datetime,
        "keywordlist" | "keyword_list" => IndexedValueType::KeywordList,
        _ => bail!(
            "invalid --type {s:?}: use Text, Keyword, Int, Double, Bool, Datetime or KeywordList"
        ),
    };
    Ok(t)
}

fn type_name(t: i32) -> String {
    match IndexedValueType::try_from(t) {
        Ok(IndexedValueType::KeywordList) => "KeywordList".into(),
        Ok(v) => {
            let n = v.as_str_name().trim_start_matches("INDEXED_VALUE_TYPE_");
            n[..1].to_string() + &n[1..].to_lowercase()
        }
        Err(_) => t.to_string(),
    }
}

async fn add_attributes(ctx: &Ctx, a: SearchAttributeArgs) -> anyhow::Result<()> {
    if a.name.len() != a.types.len() {
        bail!(
            "give one --type per --name ({} names, {} types)",
            a.name.len(),
            a.types.len()
        );
    }
    let attrs = a
        .name
        .iter()
        .zip(&a.types)
        .map(|(n, t)| Ok((n.clone(), value_type(t)? as i32)))
        .collect::<anyhow::Result<HashMap<_, _>>>()?;
    let r = ops::AddSearchAttributesRequest {
        search_attributes: attrs,
        namespace: ctx.namespace.clone(),
    };
    ctx.client
        .operator_service()
        .add_search_attributes(req(r))
        .await
        .map_err(|s| ctx.status(s, None))?;
    outln!("Search attributes have been added");
    Ok(())
}

async fn list_attributes(ctx: &Ctx) -> anyhow::Result<()> {
    let r = ops::ListSearchAttributesRequest {
        namespace: ctx.namespace.clone(),
    };
    let resp = ctx
        .client
        .operator_service()
        .list_search_attributes(req(r))
        .await
        .map_err(|s| ctx.status(s, None))?
        .into_inner();
    if ctx.output != Output::Table {
        let v = message_json(
            "temporal.api.operatorservice.v1.ListSearchAttributesResponse",
            &resp,
        )?;
        return print_json_text(&v, ctx.output == Output::Json);
    }
    let mut rows: Vec<(String, String, &str)> = resp
        .custom_attributes
        .iter()
        .map(|(k, v)| (k.clone(), type_name(*v), "custom"))
        .chain(
            resp.system_attributes
                .iter()
                .map(|(k, v)| (k.clone(), type_name(*v), "system")),
        )
        .collect();
    rows.sort();
    let rows = rows
        .into_iter()
        .map(|(n, t, k)| vec![n.into(), t.into(), k.into()])
        .collect();
    out!("{}", table(&["Name", "Type", "Kind"], rows, ctx.color));
    Ok(())
}
