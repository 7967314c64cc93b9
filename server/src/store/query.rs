//! Read side of the query API: organisations, assets, findings, stored
//! reports and the national per-code view, each a keyset-paginated list.
//!
//! Pagination format: a list is sorted by one of its named [`Sort`]s, whose
//! columns end in a unique key, so "the rows after this one" is exact. A
//! cursor is the lowercase hex of the JSON `{"s": <sort name>, "k": [<the
//! last row's sort column values>]}`: opaque to clients, checked on the way
//! back in (sort name, arity and value types), never trusted to be SQL.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};
use trustwatch_common::{Category, Severity};

use super::{Store, StoreError};
use crate::clock::fmt_ms;

/// Sort direction of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

/// Type of a sort column, as it appears in a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColTy {
    Int,
    Text,
}

/// One column of a sort.
#[derive(Debug, Clone, Copy)]
pub struct SortCol {
    pub col: &'static str,
    pub ty: ColTy,
    pub dir: Dir,
}

/// A named sort order whose columns end in a unique key.
#[derive(Debug, Clone, Copy)]
pub struct Sort {
    pub name: &'static str,
    pub cols: &'static [SortCol],
}

const fn c(col: &'static str, ty: ColTy, dir: Dir) -> SortCol {
    SortCol { col, ty, dir }
}

use ColTy::{Int, Text};
use Dir::{Asc, Desc};

/// Declares `ORG_SORTS`: the fixed sorts, then one per score column and
/// direction, where organisations without a score come last either way.
macro_rules! org_sorts {
    ($($name:literal => $col:literal $dir:ident;)*) => {
        /// Sorts of `/api/v1/orgs` (the first is the default).
        pub const ORG_SORTS: &[Sort] = &[
            Sort {
                name: "code",
                cols: &[c("code", Text, Asc)],
            },
            Sort {
                name: "-code",
                cols: &[c("code", Text, Desc)],
            },
            Sort {
                name: "name",
                cols: &[c("name", Text, Asc), c("code", Text, Asc)],
            },
            Sort {
                name: "-name",
                cols: &[c("name", Text, Desc), c("code", Text, Asc)],
            },
            Sort {
                name: "-open_findings",
                cols: &[c("open_findings", Int, Desc), c("code", Text, Asc)],
            },
            $(
                Sort {
                    name: $name,
                    cols: &[c("scored", Int, Desc), c($col, Int, $dir), c("code", Text, Asc)],
                },
            )*
        ];
    };
}

org_sorts! {
    "score" => "score" Asc;
    "-score" => "score" Desc;
    "tls_score" => "tls_score" Asc;
    "-tls_score" => "tls_score" Desc;
    "patch_score" => "patch_score" Asc;
    "-patch_score" => "patch_score" Desc;
    "legacy_score" => "legacy_score" Asc;
    "-legacy_score" => "legacy_score" Desc;
    "coverage_score" => "coverage_score" Asc;
    "-coverage_score" => "coverage_score" Desc;
    "confidence" => "confidence" Asc;
    "-confidence" => "confidence" Desc;
}

/// Sorts of `/api/v1/orgs/{code}/history` (default: oldest first).
pub const HISTORY_SORTS: &[Sort] = &[
    Sort {
        name: "day",
        cols: &[c("day", Text, Asc)],
    },
    Sort {
        name: "-day",
        cols: &[c("day", Text, Desc)],
    },
];

/// Sorts of `/api/v1/orgs/{code}/assets`.
pub const ASSET_SORTS: &[Sort] = &[
    Sort {
        name: "kind",
        cols: &[c("kind", Text, Asc), c("id", Text, Asc)],
    },
    Sort {
        name: "id",
        cols: &[c("id", Text, Asc), c("kind", Text, Asc)],
    },
    Sort {
        name: "last_seen",
        cols: &[
            c("last_seen", Int, Asc),
            c("kind", Text, Asc),
            c("id", Text, Asc),
        ],
    },
    Sort {
        name: "-last_seen",
        cols: &[
            c("last_seen", Int, Desc),
            c("kind", Text, Asc),
            c("id", Text, Asc),
        ],
    },
    Sort {
        name: "first_seen",
        cols: &[
            c("first_seen", Int, Asc),
            c("kind", Text, Asc),
            c("id", Text, Asc),
        ],
    },
];

const FINDING_KEY: [SortCol; 4] = [
    c("asset_kind", Text, Asc),
    c("asset_id", Text, Asc),
    c("code", Text, Asc),
    c("subject", Text, Asc),
];

/// Sorts of `/api/v1/orgs/{code}/findings` (default: worst first).
pub const FINDING_SORTS: &[Sort] = &[
    Sort {
        name: "-severity",
        cols: &[
            c("severity_rank", Int, Desc),
            FINDING_KEY[0],
            FINDING_KEY[1],
            FINDING_KEY[2],
            FINDING_KEY[3],
        ],
    },
    Sort {
        name: "severity",
        cols: &[
            c("severity_rank", Int, Asc),
            FINDING_KEY[0],
            FINDING_KEY[1],
            FINDING_KEY[2],
            FINDING_KEY[3],
        ],
    },
    Sort {
        name: "asset",
        cols: &[
            FINDING_KEY[0],
            FINDING_KEY[1],
            FINDING_KEY[2],
            FINDING_KEY[3],
        ],
    },
    Sort {
        name: "code",
        cols: &[
            FINDING_KEY[2],
            FINDING_KEY[0],
            FINDING_KEY[1],
            FINDING_KEY[3],
        ],
    },
    Sort {
        name: "-last_seen",
        cols: &[
            c("last_seen", Int, Desc),
            FINDING_KEY[0],
            FINDING_KEY[1],
            FINDING_KEY[2],
            FINDING_KEY[3],
        ],
    },
    Sort {
        name: "first_seen",
        cols: &[
            c("first_seen", Int, Asc),
            FINDING_KEY[0],
            FINDING_KEY[1],
            FINDING_KEY[2],
            FINDING_KEY[3],
        ],
    },
];

/// Sorts of `/api/v1/orgs/{code}/reports` (default: newest first).
pub const REPORT_SORTS: &[Sort] = &[
    Sort {
        name: "-received_at",
        cols: &[c("received_at", Int, Desc), c("report_id", Text, Asc)],
    },
    Sort {
        name: "received_at",
        cols: &[c("received_at", Int, Asc), c("report_id", Text, Asc)],
    },
    Sort {
        name: "-collected_at",
        cols: &[c("collected_at", Int, Desc), c("report_id", Text, Asc)],
    },
    Sort {
        name: "report_id",
        cols: &[c("report_id", Text, Asc)],
    },
];

/// Sorts of `/api/v1/findings?code=…`.
pub const NATIONAL_SORTS: &[Sort] = &[
    Sort {
        name: "org",
        cols: &[c("org", Text, Asc)],
    },
    Sort {
        name: "-org",
        cols: &[c("org", Text, Desc)],
    },
    Sort {
        name: "-open_findings",
        cols: &[c("open_findings", Int, Desc), c("org", Text, Asc)],
    },
    Sort {
        name: "-assets",
        cols: &[c("assets", Int, Desc), c("org", Text, Asc)],
    },
];

/// Finds a sort by name; `None` means the list's default.
pub fn find_sort(sorts: &'static [Sort], name: Option<&str>) -> Result<Sort, String> {
    let Some(first) = sorts.first() else {
        return Err("this list cannot be sorted".into());
    };
    let Some(name) = name else {
        return Ok(*first);
    };
    sorts
        .iter()
        .find(|s| s.name == name)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = sorts.iter().map(|s| s.name).collect();
            format!(
                "unknown sort {name:?} (expected one of: {})",
                names.join(", ")
            )
        })
}

/// A value of a sort column in a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    Int(i64),
    Text(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorDoc {
    s: String,
    k: Vec<KeyValue>,
}

/// Where a page starts: after the row with these sort values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After(Vec<KeyValue>);

/// Encodes the cursor that continues after `key` in `sort`.
pub fn encode_cursor(sort: &Sort, key: Vec<KeyValue>) -> String {
    let doc = CursorDoc {
        s: sort.name.to_owned(),
        k: key,
    };
    let json = serde_json::to_vec(&doc).unwrap_or_default();
    crate::pki::hex(&json)
}

/// Decodes and checks a cursor for `sort`.
pub fn decode_cursor(sort: &Sort, cursor: &str) -> Result<After, String> {
    let bad = || "cursor is not valid for this list and sort".to_string();
    if cursor.len() > 8192 || !cursor.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let doc: CursorDoc = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if doc.s != sort.name || doc.k.len() != sort.cols.len() {
        return Err(bad());
    }
    for (v, col) in doc.k.iter().zip(sort.cols) {
        match (v, col.ty) {
            (KeyValue::Int(_), ColTy::Int) | (KeyValue::Text(_), ColTy::Text) => {}
            _ => return Err(bad()),
        }
    }
    Ok(After(doc.k))
}

/// A page request.
#[derive(Debug, Clone)]
pub struct PageReq {
    pub sort: Sort,
    pub after: Option<After>,
    /// 1..=1000.
    pub limit: u32,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `/api/v1/orgs` item. The score fields and the `assets` and
/// `open_findings` counts are those of the last refresh (`scored_at`);
/// they are null before the first, and the score fields are null for an
/// organisation with nothing to score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgItem {
    pub code: String,
    pub name: String,
    pub parent: Option<String>,
    /// 0..=100, higher is better.
    pub score: Option<f64>,
    /// A, B, C, D or F.
    pub grade: Option<String>,
    pub model_version: Option<String>,
    /// 0..=100 (%): fresh agents and observed asset kinds.
    pub confidence: Option<i64>,
    pub tls_score: Option<f64>,
    pub patch_score: Option<f64>,
    pub legacy_score: Option<f64>,
    pub coverage_score: Option<f64>,
    /// 1 = best among the organisations with the same parent.
    pub rank: Option<i64>,
    /// Scored organisations with the same parent (itself included).
    pub siblings: Option<i64>,
    /// 0..=100 among those siblings.
    pub percentile: Option<i64>,
    /// True when the score is rolled up from child organisations.
    pub rollup: Option<bool>,
    pub agents: i64,
    pub assets: Option<i64>,
    pub open_findings: Option<i64>,
    pub last_report_at: Option<String>,
    pub scored_at: Option<String>,
}

/// Which organisations to list.
#[derive(Debug, Clone, Default)]
pub struct OrgFilter {
    /// Only this organisation (an `org` API key).
    pub only: Option<String>,
    /// Only children of this organisation; `Some(None)`: only top-level ones.
    pub parent: Option<Option<String>>,
    /// Only these grades.
    pub grades: Vec<String>,
}

/// `/api/v1/orgs/{code}/assets` item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetItem {
    pub kind: String,
    pub id: String,
    pub first_seen: String,
    pub last_seen: String,
    pub agent_id: String,
    pub details: Value,
}

/// `/api/v1/orgs/{code}/findings` item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingItem {
    pub code: String,
    pub severity: String,
    pub category: String,
    pub asset_kind: String,
    pub asset: String,
    pub subject: String,
    pub title: String,
    pub evidence: Value,
    pub status: String,
    pub first_seen: String,
    pub last_seen: String,
    pub resolved_at: Option<String>,
    pub reopened: i64,
    pub agent_id: String,
    pub collector: String,
}

/// `/api/v1/orgs/{code}/reports` item (the stored report's metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportItem {
    pub report_id: String,
    pub agent_id: String,
    pub received_at: String,
    pub collected_at: String,
    /// Length of the report JSON, in bytes.
    pub size: i64,
}

/// `/api/v1/findings?code=…` item: an organisation with open findings of
/// the code, on how many assets (hosts, endpoints or devices).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NationalItem {
    pub org: String,
    pub name: String,
    pub parent: Option<String>,
    pub open_findings: i64,
    pub assets: i64,
    pub score: Option<f64>,
    pub grade: Option<String>,
}

/// A finding lifecycle event in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// First seen in the period.
    New,
    /// Resolved in the period (and still resolved).
    Fixed,
    /// Reopened in the period.
    Reopened,
}

/// Which findings to list.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    /// `None` lists every status.
    pub status: Option<&'static str>,
    pub category: Option<Category>,
    pub severity: Option<Severity>,
    pub code: Option<String>,
    /// Only findings with this event in `[from, to)` (unix ms).
    pub change: Option<(Change, i64, i64)>,
}

const ORG_SELECT: &str = "SELECT o.code AS code, o.name AS name, o.parent AS parent, \
     (SELECT COUNT(*) FROM agents a WHERE a.org = o.code AND a.revoked_at IS NULL) AS agents, \
     (SELECT MAX(r.received_at) FROM reports r WHERE r.org = o.code) AS last_report_at, \
     COALESCE(s.scored, 0) AS scored, COALESCE(s.score, 0) AS score, s.grade AS grade, \
     s.model_version AS model_version, s.confidence AS confidence_value, \
     COALESCE(s.confidence, 0) AS confidence, COALESCE(s.tls_score, 0) AS tls_score, \
     COALESCE(s.patch_score, 0) AS patch_score, COALESCE(s.legacy_score, 0) AS legacy_score, \
     COALESCE(s.coverage_score, 0) AS coverage_score, s.sibling_rank AS sibling_rank, \
     s.siblings AS siblings, s.percentile AS percentile, s.rollup AS rollup, \
     s.assets AS assets, COALESCE(s.open_findings, -1) AS open_findings, \
     s.computed_at AS computed_at \
     FROM orgs o LEFT JOIN org_scores s ON s.org = o.code";

fn org_item(r: &SqliteRow) -> Result<OrgItem, StoreError> {
    let last: Option<i64> = r.try_get("last_report_at")?;
    let computed: Option<i64> = r.try_get("computed_at")?;
    let scored = r.try_get::<i64, _>("scored")? == 1;
    let score = |col: &str| -> Result<Option<f64>, StoreError> {
        let v: i64 = r.try_get(col)?;
        Ok(scored.then_some(v as f64 / 10.0))
    };
    let open: i64 = r.try_get("open_findings")?;
    let rollup: Option<i64> = r.try_get("rollup")?;
    Ok(OrgItem {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        parent: r.try_get("parent")?,
        score: score("score")?,
        grade: if scored { r.try_get("grade")? } else { None },
        model_version: r.try_get("model_version")?,
        confidence: r.try_get("confidence_value")?,
        tls_score: score("tls_score")?,
        patch_score: score("patch_score")?,
        legacy_score: score("legacy_score")?,
        coverage_score: score("coverage_score")?,
        rank: r.try_get("sibling_rank")?,
        siblings: r.try_get("siblings")?,
        percentile: r.try_get("percentile")?,
        rollup: rollup.map(|v| v == 1),
        agents: r.try_get("agents")?,
        assets: r.try_get("assets")?,
        open_findings: (open >= 0).then_some(open),
        last_report_at: last.map(fmt_ms),
        scored_at: computed.map(fmt_ms),
    })
}

fn json_col(r: &SqliteRow, col: &str) -> Result<Value, StoreError> {
    let text: String = r.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn asset_item(r: &SqliteRow) -> Result<AssetItem, StoreError> {
    Ok(AssetItem {
        kind: r.try_get("kind")?,
        id: r.try_get("id")?,
        first_seen: fmt_ms(r.try_get("first_seen")?),
        last_seen: fmt_ms(r.try_get("last_seen")?),
        agent_id: r.try_get("agent_id")?,
        details: json_col(r, "details")?,
    })
}

fn finding_item(r: &SqliteRow) -> Result<FindingItem, StoreError> {
    let resolved: Option<i64> = r.try_get("resolved_at")?;
    Ok(FindingItem {
        code: r.try_get("code")?,
        severity: r.try_get("severity")?,
        category: r.try_get("category")?,
        asset_kind: r.try_get("asset_kind")?,
        asset: r.try_get("asset_id")?,
        subject: r.try_get("subject")?,
        title: r.try_get("title")?,
        evidence: json_col(r, "evidence")?,
        status: r.try_get("status")?,
        first_seen: fmt_ms(r.try_get("first_seen")?),
        last_seen: fmt_ms(r.try_get("last_seen")?),
        resolved_at: resolved.map(fmt_ms),
        reopened: r.try_get("reopened")?,
        agent_id: r.try_get("agent_id")?,
        collector: r.try_get("collector")?,
    })
}

fn report_item(r: &SqliteRow) -> Result<ReportItem, StoreError> {
    Ok(ReportItem {
        report_id: r.try_get("report_id")?,
        agent_id: r.try_get("agent_id")?,
        received_at: fmt_ms(r.try_get("received_at")?),
        collected_at: fmt_ms(r.try_get("collected_at")?),
        size: r.try_get("size")?,
    })
}

fn national_item(r: &SqliteRow) -> Result<NationalItem, StoreError> {
    let scored: Option<i64> = r.try_get("scored")?;
    let score: Option<i64> = r.try_get("score")?;
    let scored = scored == Some(1);
    Ok(NationalItem {
        org: r.try_get("org")?,
        name: r.try_get("name")?,
        parent: r.try_get("parent")?,
        open_findings: r.try_get("open_findings")?,
        assets: r.try_get("assets")?,
        score: score.filter(|_| scored).map(|v| v as f64 / 10.0),
        grade: if scored { r.try_get("grade")? } else { None },
    })
}

/// Wraps `inner` (which already selected the sort columns by name) with the
/// keyset predicate, order and limit of `page`.
fn paged<'a>(mut qb: QueryBuilder<'a, Sqlite>, page: &PageReq) -> QueryBuilder<'a, Sqlite> {
    qb.push(") AS t");
    if let Some(After(values)) = &page.after {
        qb.push(" WHERE (");
        for i in 0..page.sort.cols.len() {
            if i > 0 {
                qb.push(" OR ");
            }
            qb.push("(");
            for (j, (col, v)) in page.sort.cols.iter().zip(values).enumerate().take(i + 1) {
                if j > 0 {
                    qb.push(" AND ");
                }
                let op = if j < i {
                    " = "
                } else if col.dir == Dir::Asc {
                    " > "
                } else {
                    " < "
                };
                qb.push(col.col).push(op);
                match v {
                    KeyValue::Int(n) => qb.push_bind(*n),
                    KeyValue::Text(s) => qb.push_bind(s.clone()),
                };
            }
            qb.push(")");
        }
        qb.push(")");
    }
    qb.push(" ORDER BY ");
    for (i, col) in page.sort.cols.iter().enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push(col.col)
            .push(if col.dir == Dir::Asc { " ASC" } else { " DESC" });
    }
    qb.push(" LIMIT ").push_bind(i64::from(page.limit) + 1);
    qb
}

fn key_of(r: &SqliteRow, sort: &Sort) -> Result<Vec<KeyValue>, StoreError> {
    sort.cols
        .iter()
        .map(|col| {
            Ok(match col.ty {
                ColTy::Int => KeyValue::Int(r.try_get(col.col)?),
                ColTy::Text => KeyValue::Text(r.try_get(col.col)?),
            })
        })
        .collect()
}

impl Store {
    pub(crate) async fn page<T>(
        &self,
        qb: QueryBuilder<'_, Sqlite>,
        page: &PageReq,
        item: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let mut qb = paged(qb, page);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(rows.len().min(limit));
        let mut next_cursor = None;
        for (i, r) in rows.iter().take(limit).enumerate() {
            items.push(item(r)?);
            if more && i + 1 == limit {
                next_cursor = Some(encode_cursor(&page.sort, key_of(r, &page.sort)?));
            }
        }
        Ok(Page { items, next_cursor })
    }

    /// Organisations, with their stored scores (no aggregation over
    /// findings: the league table reads `org_scores`).
    pub async fn orgs_page(
        &self,
        filter: &OrgFilter,
        page: &PageReq,
    ) -> Result<Page<OrgItem>, StoreError> {
        let mut qb = QueryBuilder::new("SELECT * FROM (");
        qb.push(ORG_SELECT);
        qb.push(" WHERE 1 = 1");
        if let Some(code) = &filter.only {
            qb.push(" AND o.code = ").push_bind(code.clone());
        }
        match &filter.parent {
            None => {}
            Some(None) => {
                qb.push(" AND o.parent IS NULL");
            }
            Some(Some(p)) => {
                qb.push(" AND o.parent = ").push_bind(p.clone());
            }
        }
        if !filter.grades.is_empty() {
            qb.push(" AND s.scored = 1 AND s.grade IN (");
            let mut sep = qb.separated(", ");
            for g in &filter.grades {
                sep.push_bind(g.clone());
            }
            qb.push(")");
        }
        self.page(qb, page, org_item).await
    }

    /// One organisation.
    pub async fn org_item(&self, code: &str) -> Result<Option<OrgItem>, StoreError> {
        let mut qb = QueryBuilder::new(ORG_SELECT);
        qb.push(" WHERE o.code = ").push_bind(code.to_owned());
        let row = qb.build().fetch_optional(&self.pool).await?;
        row.as_ref().map(org_item).transpose()
    }

    /// Assets of an organisation.
    pub async fn assets_page(
        &self,
        org: &str,
        kind: Option<&str>,
        page: &PageReq,
    ) -> Result<Page<AssetItem>, StoreError> {
        let mut qb = QueryBuilder::new(
            "SELECT * FROM (SELECT kind, id, first_seen, last_seen, agent_id, details \
             FROM assets WHERE org = ",
        );
        qb.push_bind(org.to_owned());
        if let Some(k) = kind {
            qb.push(" AND kind = ").push_bind(k.to_owned());
        }
        self.page(qb, page, asset_item).await
    }

    /// Findings of an organisation.
    pub async fn findings_page(
        &self,
        org: &str,
        filter: &FindingFilter,
        page: &PageReq,
    ) -> Result<Page<FindingItem>, StoreError> {
        let mut qb = QueryBuilder::new(
            "SELECT * FROM (SELECT asset_kind, asset_id, code, subject, severity, severity_rank, \
             category, title, evidence, status, first_seen, last_seen, resolved_at, reopened, \
             agent_id, collector FROM findings WHERE org = ",
        );
        qb.push_bind(org.to_owned());
        if let Some(s) = filter.status {
            qb.push(" AND status = ").push_bind(s);
        }
        if let Some(c) = filter.category {
            qb.push(" AND category = ").push_bind(c.as_str());
        }
        if let Some(s) = filter.severity {
            qb.push(" AND severity = ").push_bind(s.as_str());
        }
        if let Some(code) = &filter.code {
            qb.push(" AND code = ").push_bind(code.clone());
        }
        if let Some((change, from, to)) = filter.change {
            let col = match change {
                Change::New => "first_seen",
                Change::Fixed => "resolved_at",
                Change::Reopened => "reopened_at",
            };
            if change == Change::Fixed {
                qb.push(" AND status = 'resolved'");
            }
            qb.push(format!(" AND {col} >= ")).push_bind(from);
            qb.push(format!(" AND {col} < ")).push_bind(to);
        }
        self.page(qb, page, finding_item).await
    }

    /// Reports stored for an organisation (metadata only).
    pub async fn reports_page(
        &self,
        org: &str,
        page: &PageReq,
    ) -> Result<Page<ReportItem>, StoreError> {
        let mut qb = QueryBuilder::new(
            "SELECT * FROM (SELECT report_id, agent_id, received_at, collected_at, size \
             FROM reports WHERE org = ",
        );
        qb.push_bind(org.to_owned());
        self.page(qb, page, report_item).await
    }

    /// Which organisations have open findings of `code`, and on how many
    /// assets; optionally only children of `parent`.
    pub async fn national_page(
        &self,
        code: &str,
        parent: Option<&str>,
        page: &PageReq,
    ) -> Result<Page<NationalItem>, StoreError> {
        let mut qb = QueryBuilder::new(
            "SELECT * FROM (SELECT f.org AS org, o.name AS name, o.parent AS parent, \
             f.open_findings AS open_findings, f.assets AS assets, s.scored AS scored, \
             s.score AS score, s.grade AS grade FROM (SELECT org, COUNT(*) AS open_findings, \
             COUNT(DISTINCT asset_kind || '|' || asset_id) AS assets \
             FROM findings WHERE status = 'open' AND code = ",
        );
        qb.push_bind(code.to_owned());
        qb.push(
            " GROUP BY org) AS f JOIN orgs o ON o.code = f.org \
             LEFT JOIN org_scores s ON s.org = f.org",
        );
        if let Some(p) = parent {
            qb.push(" WHERE o.parent = ").push_bind(p.to_owned());
        }
        self.page(qb, page, national_item).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_sort() {
        let s = find_sort(FINDING_SORTS, None).unwrap();
        let key = vec![
            KeyValue::Int(3),
            KeyValue::Text("host".into()),
            KeyValue::Text("pacs01".into()),
            KeyValue::Text("patch.os.eol".into()),
            KeyValue::Text(String::new()),
        ];
        let cur = encode_cursor(&s, key.clone());
        assert_eq!(decode_cursor(&s, &cur).unwrap(), After(key));
        let other = find_sort(FINDING_SORTS, Some("code")).unwrap();
        assert!(decode_cursor(&other, &cur).is_err());
        for bad in ["", "zz", "abc", "7b7d", &"0".repeat(9000)] {
            assert!(decode_cursor(&s, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursor_with_wrong_value_types_is_refused() {
        let s = find_sort(ORG_SORTS, Some("-open_findings")).unwrap();
        let cur = encode_cursor(
            &s,
            vec![KeyValue::Text("x".into()), KeyValue::Text("y".into())],
        );
        assert!(decode_cursor(&s, &cur).is_err());
    }

    #[test]
    fn unknown_sort_names_the_allowed_ones() {
        let e = find_sort(ORG_SORTS, Some("scores")).unwrap_err();
        assert!(e.contains("-name"), "{e}");
    }
}
