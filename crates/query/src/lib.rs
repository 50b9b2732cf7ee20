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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub where_sql: String,
    pub params: Vec<SqlValue>,
    pub order_by: Option<String>,
    pub group_by_status: bool,
}
#[derive(Debug, thiserror::Error)]
#[error("invalid query: {0}")]
pub struct QueryError(String);
pub fn compile_with_offset(
    q: &str,
    _d: Dialect,
    _c: &dyn Fn(&str) -> Option<SaType>,
    _o: usize,
) -> Result<Compiled, QueryError> {
    if q.trim().is_empty() {
        return Ok(Compiled {
            where_sql: "1=1".into(),
            params: vec![],
            order_by: None,
            group_by_status: false,
        });
    }
    Err(QueryError("shim".into()))
}
pub fn system_attributes() -> &'static [(&'static str, SaType)] {
    &[
        ("WorkflowId", SaType::Keyword),
        ("TemporalChangeVersion", SaType::KeywordList),
    ]
}
pub fn status_name(_n: i32) -> Option<&'static str> {
    None
}
