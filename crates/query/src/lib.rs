//! Temporal's visibility query language (the filter of `ListWorkflowExecutions` and
//! `CountWorkflowExecutions`, e.g. `WorkflowType = 'order' AND ExecutionStatus = 'Running'`)
//! compiled to a parameterised SQL `WHERE` clause over the `visibility` table, for SQLite and
//! PostgreSQL. User values are always parameters, never spliced into SQL.
//!
//! The table: `workflow_id`, `workflow_type`, `run_id`, `task_queue` (TEXT), `status` (INTEGER,
//! `WorkflowExecutionStatus`), `start_time`, `execution_time`, `close_time` (INTEGER unix
//! nanoseconds, `close_time` NULL while running), `execution_duration` (nanoseconds),
//! `history_length`, `history_size_bytes`, `state_transition_count` (INTEGER),
//! `parent_workflow_id`, `root_workflow_id` (TEXT), and `search_attributes`: a JSON object holding
//! every other attribute (Keyword/Text as strings, Int/Double as numbers, Bool as booleans,
//! Datetime as unix nanoseconds, KeywordList as arrays of strings).

mod lexer;

use lexer::{Lexer, Tok};

/// A search attribute type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaType {
    Keyword,
    Text,
    Int,
    Double,
    Bool,
    Datetime,
    KeywordList,
}

impl SaType {
    pub fn as_str(&self) -> &'static str {
        match self {
            SaType::Keyword => "Keyword",
            SaType::Text => "Text",
            SaType::Int => "Int",
            SaType::Double => "Double",
            SaType::Bool => "Bool",
            SaType::Datetime => "Datetime",
            SaType::KeywordList => "KeywordList",
        }
    }
}

/// Target SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

/// A compiled query.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// Boolean SQL expression (`1=1` for an empty query).
    pub where_sql: String,
    pub params: Vec<SqlValue>,
    /// `ORDER BY` list (without the keywords), if the query had one.
    pub order_by: Option<String>,
    /// The query ended in `GROUP BY ExecutionStatus`.
    pub group_by_status: bool,
}

/// A query the server must refuse (INVALID_ARGUMENT); the message starts with `invalid query:`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid query: {0}")]
pub struct QueryError(pub String);

fn malformed(msg: impl std::fmt::Display) -> QueryError {
    QueryError(format!("malformed SQL query: {msg}"))
}

/// Deepest nesting of parentheses and `NOT`s accepted (Temporal refuses 200).
pub const MAX_NESTING: usize = 199;
/// Deepest expression tree accepted, counting one level per `AND`/`OR` operand after the first,
/// as Temporal does (a flat chain of 995 predicates is accepted, 996 are refused).
pub const MAX_AST_DEPTH: usize = 995;

/// Where an attribute lives.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Col {
    /// A column of its own.
    Column(&'static str),
    /// Inside the `search_attributes` JSON.
    Json,
}

const SYSTEM: &[(&str, SaType, Col)] = &[
    ("WorkflowId", SaType::Keyword, Col::Column("workflow_id")),
    (
        "WorkflowType",
        SaType::Keyword,
        Col::Column("workflow_type"),
    ),
    ("RunId", SaType::Keyword, Col::Column("run_id")),
    ("TaskQueue", SaType::Keyword, Col::Column("task_queue")),
    ("ExecutionStatus", SaType::Keyword, Col::Column("status")),
    ("StartTime", SaType::Datetime, Col::Column("start_time")),
    ("CloseTime", SaType::Datetime, Col::Column("close_time")),
    (
        "ExecutionTime",
        SaType::Datetime,
        Col::Column("execution_time"),
    ),
    (
        "ExecutionDuration",
        SaType::Int,
        Col::Column("execution_duration"),
    ),
    ("HistoryLength", SaType::Int, Col::Column("history_length")),
    (
        "HistorySizeBytes",
        SaType::Int,
        Col::Column("history_size_bytes"),
    ),
    (
        "StateTransitionCount",
        SaType::Int,
        Col::Column("state_transition_count"),
    ),
    (
        "ParentWorkflowId",
        SaType::Keyword,
        Col::Column("parent_workflow_id"),
    ),
    (
        "RootWorkflowId",
        SaType::Keyword,
        Col::Column("root_workflow_id"),
    ),
    ("TemporalChangeVersion", SaType::KeywordList, Col::Json),
    ("BuildIds", SaType::KeywordList, Col::Json),
    ("BinaryChecksums", SaType::KeywordList, Col::Json),
    // Set by a schedule on the runs it starts (and settable by anyone, as in Temporal).
    ("TemporalScheduledStartTime", SaType::Datetime, Col::Json),
    ("TemporalScheduledById", SaType::Keyword, Col::Json),
];

/// The system attributes and their types.
pub fn system_attributes() -> &'static [(&'static str, SaType)] {
    const fn strip() -> [(&'static str, SaType); SYSTEM.len()] {
        let mut out = [("", SaType::Keyword); SYSTEM.len()];
        let mut i = 0;
        while i < SYSTEM.len() {
            out[i] = (SYSTEM[i].0, SYSTEM[i].1);
            i += 1;
        }
        out
    }
    static LIST: [(&str, SaType); SYSTEM.len()] = strip();
    &LIST
}

const STATUSES: &[(&str, i32)] = &[
    ("Running", 1),
    ("Completed", 2),
    ("Failed", 3),
    ("Canceled", 4),
    ("Terminated", 5),
    ("ContinuedAsNew", 6),
    ("TimedOut", 7),
];

/// `Running` for 1, and so on.
pub fn status_name(n: i32) -> Option<&'static str> {
    STATUSES.iter().find(|(_, v)| *v == n).map(|(s, _)| *s)
}

/// 1 for `Running` (case-insensitive), and so on.
pub fn status_from_name(s: &str) -> Option<i32> {
    STATUSES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v)| *v)
}

/// Compiles `query` with placeholders numbered from 1.
pub fn compile(
    query: &str,
    dialect: Dialect,
    custom: &dyn Fn(&str) -> Option<SaType>,
) -> Result<Compiled, QueryError> {
    compile_with_offset(query, dialect, custom, 1)
}

/// Compiles `query`; the first placeholder is number `first_param_index`.
pub fn compile_with_offset(
    query: &str,
    dialect: Dialect,
    custom: &dyn Fn(&str) -> Option<SaType>,
    first_param_index: usize,
) -> Result<Compiled, QueryError> {
    Ok(parse(query, custom)?.to_sql(dialect, first_param_index))
}

/// Parses and checks `query` into a backend-neutral [`VisibilityQuery`]: every attribute is
/// resolved (system attributes, then `custom`) and every value converted to the attribute's
/// stored form. Each storage backend renders it to its own SQL with
/// [`VisibilityQuery::to_sql`].
pub fn parse(
    query: &str,
    custom: &dyn Fn(&str) -> Option<SaType>,
) -> Result<VisibilityQuery, QueryError> {
    let tokens = Lexer::new(query).tokens()?;
    let mut p = Parser {
        toks: tokens,
        pos: 0,
        custom,
        nesting: 0,
    };
    p.query()
}

/// A resolved attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    /// The attribute's name as Temporal spells it (`WorkflowType`, `CustomKeywordField`).
    pub name: String,
    pub ty: SaType,
    col: Col,
}

impl Attr {
    /// The column of its own that holds a system attribute (see the crate docs), or `None` for
    /// an attribute kept in the `search_attributes` JSON object.
    pub fn column(&self) -> Option<&'static str> {
        match self.col {
            Col::Column(c) => Some(c),
            Col::Json => None,
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn parse(s: &str) -> Option<CmpOp> {
        Some(match s {
            "=" => CmpOp::Eq,
            "!=" | "<>" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => return None,
        })
    }
    /// The SQL spelling.
    pub fn as_sql(&self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A checked filter: the tree of a query's `WHERE` part, values already in stored form.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `attr IS NULL` (`true`: `IS NOT NULL`).
    IsNull(Attr, bool),
    /// `attr op value` on a single-valued attribute.
    Cmp(Attr, CmpOp, SqlValue),
    /// `attr IN (values)` on a single-valued attribute.
    In(Attr, Vec<SqlValue>),
    /// `attr BETWEEN lo AND hi`.
    Between(Attr, SqlValue, SqlValue),
    /// `attr STARTS_WITH prefix` (the prefix as written, unescaped).
    StartsWith(Attr, String),
    /// A KeywordList attribute contains the value (`=` on a list).
    Contains(Attr, SqlValue),
}

/// A parsed query: the filter (none for an empty query), its `ORDER BY` and whether it groups
/// by `ExecutionStatus`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VisibilityQuery {
    pub filter: Option<Filter>,
    /// `(attribute, descending)` in order.
    pub order_by: Vec<(Attr, bool)>,
    pub group_by_status: bool,
}

impl VisibilityQuery {
    /// The query that matches every row.
    pub fn all() -> VisibilityQuery {
        VisibilityQuery::default()
    }

    /// Renders the query for `dialect`, the first placeholder numbered `first_param_index`.
    pub fn to_sql(&self, dialect: Dialect, first_param_index: usize) -> Compiled {
        let mut r = Render {
            dialect,
            first: first_param_index,
            params: Vec::new(),
        };
        let where_sql = match &self.filter {
            Some(f) => r.filter(f),
            None => "1=1".to_string(),
        };
        let order_by = (!self.order_by.is_empty()).then(|| {
            self.order_by
                .iter()
                .map(|(a, desc)| {
                    // NULLs sort first ascending and last descending in every dialect (SQLite's
                    // rule), so all backends list in the same order.
                    let dir = match (dialect, desc) {
                        (Dialect::Sqlite, true) => " DESC",
                        (Dialect::Sqlite, false) => " ASC",
                        (Dialect::Postgres, true) => " DESC NULLS LAST",
                        (Dialect::Postgres, false) => " ASC NULLS FIRST",
                    };
                    format!("{}{dir}", r.col(a))
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        Compiled {
            where_sql,
            params: r.params,
            order_by,
            group_by_status: self.group_by_status,
        }
    }
}

/// Renders a [`Filter`] to one dialect's SQL, collecting its parameters.
struct Render {
    dialect: Dialect,
    first: usize,
    params: Vec<SqlValue>,
}

impl Render {
    fn param(&mut self, v: &SqlValue) -> String {
        let v = match (self.dialect, v) {
            // SQLite's json_extract yields 1/0 for JSON booleans.
            (Dialect::Sqlite, SqlValue::Bool(b)) => SqlValue::Int(*b as i64),
            (_, v) => v.clone(),
        };
        self.params.push(v);
        let n = self.first + self.params.len() - 1;
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// SQL for the attribute's value.
    fn col(&self, a: &Attr) -> String {
        match a.col {
            Col::Column(c) => c.to_string(),
            Col::Json => {
                let key = json_key(a);
                match self.dialect {
                    Dialect::Sqlite => format!("json_extract(search_attributes, '$.\"{key}\"')"),
                    Dialect::Postgres => {
                        let cast = match a.ty {
                            SaType::Int | SaType::Datetime => "::bigint",
                            SaType::Double => "::double precision",
                            SaType::Bool => "::boolean",
                            _ => "",
                        };
                        format!("((search_attributes::jsonb ->> '{key}'){cast})")
                    }
                }
            }
        }
    }

    /// "The list contains the value" for a KeywordList attribute.
    fn contains(&mut self, a: &Attr, v: &SqlValue) -> String {
        let key = json_key(a);
        let p = self.param(v);
        match self.dialect {
            Dialect::Sqlite => format!(
                "EXISTS (SELECT 1 FROM json_each(search_attributes, '$.\"{key}\"') WHERE value = {p})"
            ),
            // A missing key is "does not contain" (false, not NULL), as in SQLite.
            Dialect::Postgres => {
                format!("COALESCE((search_attributes::jsonb -> '{key}') ? {p}, false)")
            }
        }
    }

    fn filter(&mut self, f: &Filter) -> String {
        match f {
            Filter::And(parts) => self.chain(parts, " AND "),
            Filter::Or(parts) => self.chain(parts, " OR "),
            Filter::Not(inner) => format!("(NOT {})", self.filter(inner)),
            Filter::IsNull(a, not) => {
                format!("{} IS {}NULL", self.col(a), if *not { "NOT " } else { "" })
            }
            Filter::Cmp(a, op, v) => {
                let col = self.col(a);
                let p = self.param(v);
                format!("{col} {} {p}", op.as_sql())
            }
            Filter::In(a, vs) => {
                let col = self.col(a);
                let items: Vec<String> = vs.iter().map(|v| self.param(v)).collect();
                format!("{col} IN ({})", items.join(", "))
            }
            Filter::Between(a, lo, hi) => {
                let col = self.col(a);
                let (lo, hi) = (self.param(lo), self.param(hi));
                format!("{col} BETWEEN {lo} AND {hi}")
            }
            Filter::StartsWith(a, prefix) => {
                let col = self.col(a);
                let escaped = prefix
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                let p = self.param(&SqlValue::Text(format!("{escaped}%")));
                format!("{col} LIKE {p} ESCAPE '\\'")
            }
            Filter::Contains(a, v) => self.contains(a, v),
        }
    }

    fn chain(&mut self, parts: &[Filter], op: &str) -> String {
        let sqls: Vec<String> = parts.iter().map(|p| self.filter(p)).collect();
        join_balanced(&sqls, op)
    }
}

fn json_key(a: &Attr) -> String {
    a.name.replace('\'', "''").replace('"', "")
}

/// A literal as written.
#[derive(Debug, Clone)]
enum Lit {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    custom: &'a dyn Fn(&str) -> Option<SaType>,
    /// Current depth of parentheses and `NOT`s; bounded so recursion stays shallow.
    nesting: usize,
}

/// A parsed boolean expression and the depth of its syntax tree.
struct Expr {
    filter: Filter,
    depth: usize,
}

/// Joins operands with `op`; long chains become a balanced tree so the database's own
/// expression-depth limit is never reached.
fn join_balanced(parts: &[String], op: &str) -> String {
    if parts.len() <= 16 {
        return format!("({})", parts.join(op));
    }
    let (l, r) = parts.split_at(parts.len() / 2);
    format!("({}{op}{})", join_balanced(l, op), join_balanced(r, op))
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn at(&self) -> usize {
        self.toks[self.pos].1
    }
    fn next(&mut self) -> Tok {
        let t = self.toks[self.pos].0.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s, false) if s.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.next();
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected {kw}")))
        }
    }
    fn unexpected(&self, what: &str) -> QueryError {
        malformed(format!(
            "{what}, found {} at position {}",
            self.peek(),
            self.at()
        ))
    }

    fn query(&mut self) -> Result<VisibilityQuery, QueryError> {
        let filter =
            if matches!(self.peek(), Tok::Eof) || self.is_kw("order") || self.is_kw("group") {
                None
            } else {
                Some(self.or_expr()?.filter)
            };
        let mut order_by = Vec::new();
        let mut group_by_status = false;
        loop {
            if self.eat_kw("order") {
                self.expect_kw("by")?;
                let mut items = Vec::new();
                loop {
                    let a = self.attr()?;
                    let desc = if self.eat_kw("desc") {
                        true
                    } else {
                        self.eat_kw("asc");
                        false
                    };
                    items.push((a, desc));
                    if !matches!(self.peek(), Tok::Comma) {
                        break;
                    }
                    self.next();
                }
                order_by = items;
            } else if self.eat_kw("group") {
                self.expect_kw("by")?;
                let a = self.attr()?;
                if a.name != "ExecutionStatus" {
                    return Err(QueryError(
                        "'group by' clause is only supported for ExecutionStatus search attribute"
                            .into(),
                    ));
                }
                group_by_status = true;
            } else {
                break;
            }
        }
        if !matches!(self.peek(), Tok::Eof) {
            return Err(self.unexpected("unexpected input"));
        }
        Ok(VisibilityQuery {
            filter,
            order_by,
            group_by_status,
        })
    }

    fn or_expr(&mut self) -> Result<Expr, QueryError> {
        self.chain("or", Self::and_expr)
    }

    fn and_expr(&mut self) -> Result<Expr, QueryError> {
        self.chain("and", Self::unary)
    }

    /// `operand (kw operand)*`, joined with the keyword.
    fn chain(
        &mut self,
        kw: &str,
        operand: fn(&mut Self) -> Result<Expr, QueryError>,
    ) -> Result<Expr, QueryError> {
        let first = operand(self)?;
        let mut depth = first.depth;
        let mut parts = vec![first.filter];
        while self.eat_kw(kw) {
            let e = operand(self)?;
            depth = depth.max(e.depth) + 1;
            if depth > MAX_AST_DEPTH {
                return Err(malformed("max ast depth reached"));
            }
            parts.push(e.filter);
        }
        let filter = match (parts.len(), kw) {
            (1, _) => parts.pop().expect("one part"),
            (_, "or") => Filter::Or(parts),
            _ => Filter::And(parts),
        };
        Ok(Expr { filter, depth })
    }

    /// Enters one level of parentheses or `NOT`, refusing past [`MAX_NESTING`].
    fn nest(&mut self) -> Result<(), QueryError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(malformed(format!(
                "max nesting level reached at position {}",
                self.at()
            )));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.eat_kw("not") {
            self.nest()?;
            let e = self.unary()?;
            self.nesting -= 1;
            return Ok(Expr {
                filter: Filter::Not(Box::new(e.filter)),
                depth: e.depth + 1,
            });
        }
        if matches!(self.peek(), Tok::LParen) {
            self.next();
            self.nest()?;
            let e = self.or_expr()?;
            self.nesting -= 1;
            if !matches!(self.next(), Tok::RParen) {
                return Err(malformed("missing closing parenthesis"));
            }
            return Ok(Expr {
                filter: e.filter,
                depth: e.depth + 1,
            });
        }
        Ok(Expr {
            filter: self.predicate()?,
            depth: 1,
        })
    }

    fn attr(&mut self) -> Result<Attr, QueryError> {
        let name = match self.next() {
            Tok::Ident(s, _) => s,
            t => {
                return Err(malformed(format!(
                    "expected a search attribute name, found {t}"
                )));
            }
        };
        if let Some((n, ty, col)) = SYSTEM.iter().find(|(n, _, _)| *n == name) {
            return Ok(Attr {
                name: n.to_string(),
                ty: *ty,
                col: *col,
            });
        }
        match (self.custom)(&name) {
            Some(ty) => Ok(Attr {
                name,
                ty,
                col: Col::Json,
            }),
            None => Err(QueryError(format!("invalid search attribute: {name}"))),
        }
    }

    fn literal(&mut self) -> Result<Lit, QueryError> {
        let neg = matches!(self.peek(), Tok::Minus);
        if neg {
            self.next();
        }
        let lit = match self.next() {
            Tok::Str(s) if !neg => Lit::Str(s),
            Tok::Int(i) => Lit::Int(if neg { -i } else { i }),
            Tok::Float(f) => Lit::Float(if neg { -f } else { f }),
            Tok::Ident(s, false) if !neg && s.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Tok::Ident(s, false) if !neg && s.eq_ignore_ascii_case("false") => Lit::Bool(false),
            t => return Err(malformed(format!("expected a value, found {t}"))),
        };
        Ok(lit)
    }

    /// Converts a literal to the attribute's stored form.
    fn value(&self, a: &Attr, lit: &Lit) -> Result<SqlValue, QueryError> {
        let bad = || {
            let shown = match lit {
                Lit::Str(s) => format!("{s:?}"),
                Lit::Int(i) => i.to_string(),
                Lit::Float(f) => f.to_string(),
                Lit::Bool(b) => b.to_string(),
            };
            QueryError(format!(
                "invalid value for search attribute {} of type {}: {shown}",
                a.name,
                a.ty.as_str()
            ))
        };
        if a.name == "ExecutionStatus" {
            return match lit {
                Lit::Str(s) => status_from_name(s)
                    .map(|v| SqlValue::Int(v as i64))
                    .ok_or_else(bad),
                Lit::Int(i) if status_name(*i as i32).is_some() => Ok(SqlValue::Int(*i)),
                _ => Err(bad()),
            };
        }
        if a.name == "ExecutionDuration" {
            return match lit {
                Lit::Int(i) => Ok(SqlValue::Int(*i)),
                Lit::Str(s) => parse_go_duration(s).map(SqlValue::Int).ok_or_else(bad),
                _ => Err(bad()),
            };
        }
        Ok(match (a.ty, lit) {
            (SaType::Keyword | SaType::Text | SaType::KeywordList, Lit::Str(s)) => {
                SqlValue::Text(s.clone())
            }
            (SaType::Int, Lit::Int(i)) => SqlValue::Int(*i),
            (SaType::Int, Lit::Str(s)) => SqlValue::Int(s.trim().parse().map_err(|_| bad())?),
            (SaType::Double, Lit::Int(i)) => SqlValue::Real(*i as f64),
            (SaType::Double, Lit::Float(f)) => SqlValue::Real(*f),
            (SaType::Double, Lit::Str(s)) => SqlValue::Real(s.trim().parse().map_err(|_| bad())?),
            (SaType::Bool, Lit::Bool(b)) => SqlValue::Bool(*b),
            (SaType::Bool, Lit::Str(s)) if s.eq_ignore_ascii_case("true") => SqlValue::Bool(true),
            (SaType::Bool, Lit::Str(s)) if s.eq_ignore_ascii_case("false") => SqlValue::Bool(false),
            (SaType::Datetime, Lit::Int(i)) => SqlValue::Int(*i),
            (SaType::Datetime, Lit::Str(s)) => SqlValue::Int(parse_time(s).ok_or_else(bad)?),
            _ => return Err(bad()),
        })
    }

    fn predicate(&mut self) -> Result<Filter, QueryError> {
        let a = self.attr()?;
        let list = a.ty == SaType::KeywordList;
        // IS [NOT] NULL
        if self.eat_kw("is") {
            let not = self.eat_kw("not");
            self.expect_kw("null")?;
            return Ok(Filter::IsNull(a, not));
        }
        let not = self.eat_kw("not");
        let negate = |f: Filter| if not { Filter::Not(Box::new(f)) } else { f };
        if self.eat_kw("in") {
            if !matches!(self.next(), Tok::LParen) {
                return Err(malformed("expected ( after IN"));
            }
            let mut items = Vec::new();
            loop {
                let lit = self.literal()?;
                items.push(self.value(&a, &lit)?);
                match self.next() {
                    Tok::Comma => continue,
                    Tok::RParen => break,
                    t => return Err(malformed(format!("expected , or ) in IN list, found {t}"))),
                }
            }
            let f = if list {
                Filter::Or(
                    items
                        .into_iter()
                        .map(|v| Filter::Contains(a.clone(), v))
                        .collect(),
                )
            } else {
                Filter::In(a, items)
            };
            return Ok(negate(f));
        }
        if self.eat_kw("between") {
            let lo = self.literal()?;
            self.expect_kw("and")?;
            let hi = self.literal()?;
            if list {
                return Err(QueryError(format!(
                    "BETWEEN is not supported on {} of type KeywordList",
                    a.name
                )));
            }
            let (lo, hi) = (self.value(&a, &lo)?, self.value(&a, &hi)?);
            return Ok(negate(Filter::Between(a, lo, hi)));
        }
        if self.is_kw("like") {
            return Err(QueryError(format!(
                "operator 'like' is not supported for search attribute {}",
                a.name
            )));
        }
        if self.eat_kw("starts_with") {
            if not || !matches!(a.ty, SaType::Keyword | SaType::KeywordList) {
                return Err(QueryError(format!(
                    "operator 'starts_with' is not supported for search attribute {}",
                    a.name
                )));
            }
            let Lit::Str(prefix) = self.literal()? else {
                return Err(malformed("STARTS_WITH needs a string"));
            };
            return Ok(Filter::StartsWith(a, prefix));
        }
        if not {
            return Err(self.unexpected("expected IN, BETWEEN or STARTS_WITH after NOT"));
        }
        let op = match self.next() {
            Tok::Op(op) => op,
            t => {
                return Err(malformed(format!(
                    "expected an operator after {}, found {t}",
                    a.name
                )));
            }
        };
        let cmp = CmpOp::parse(&op)
            .ok_or_else(|| malformed(format!("unknown operator {op} after {}", a.name)))?;
        let lit = self.literal()?;
        let v = self.value(&a, &lit)?;
        if list {
            return match cmp {
                CmpOp::Eq => Ok(Filter::Contains(a, v)),
                CmpOp::Ne => Ok(Filter::Not(Box::new(Filter::Contains(a, v)))),
                _ => Err(QueryError(format!(
                    "operator '{op}' is not supported for search attribute {} of type KeywordList",
                    a.name
                ))),
            };
        }
        Ok(Filter::Cmp(a, cmp, v))
    }
}

fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
}

/// Parses a Go duration such as `1h30m`, `1.5s`, `250ms`, `10us`, `3ns` into nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * unit;
    }
    (total.is_finite() && total < 9.2e18).then_some(total as i64)
}

#[cfg(test)]
mod tests;
