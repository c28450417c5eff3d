//! The fleet: devices of a project, registered by their first heartbeat or event.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::page::{Cursor, Page, PageRequest};
use crate::db::projects::ProjectSet;
use crate::db::schema::{devices, projects};
use crate::db::{BulkTx, Db, Run, bulk, on_bulk_tx, with_conn};
use crate::error::AppError;
use crate::values::{Id, Timestamp};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = devices)]
pub struct Device {
    pub id: Id,
    pub project_id: Id,
    /// The device's own identifier, unique in its project.
    pub external_id: String,
    pub device_type: Option<String>,
    pub os: Option<String>,
    pub runtime_version: Option<String>,
    /// Free labels, a JSON object of strings.
    pub labels: String,
    pub first_seen_at: Timestamp,
    pub last_heartbeat_at: Option<Timestamp>,
}

/// Which heartbeat ages a list keeps: at or after `since`, before `before`, and devices that
/// never sent one when `never` is set (the three health states, in the database's terms).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeartbeatRange {
    pub since: Option<Timestamp>,
    pub before: Option<Timestamp>,
    pub never: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub project_id: Option<Id>,
    pub device_type: Option<String>,
    pub heartbeat: Option<HeartbeatRange>,
}

/// Devices this replica knows are registered. Their rows stay (a device leaves only with its
/// project), so a batch of events naming only known devices skips the insert. Bounded: past
/// [`KNOWN_DEVICES_MAX`] entries it starts over, which costs one insert per device again.
#[derive(Debug, Default)]
pub struct KnownDevices(std::sync::Mutex<KnownSet>);

/// External ids by project, so a lookup borrows the id instead of building a key.
#[derive(Debug, Default)]
struct KnownSet {
    by_project: std::collections::HashMap<Id, std::collections::HashSet<String>>,
    len: usize,
}

pub const KNOWN_DEVICES_MAX: usize = 200_000;

impl KnownDevices {
    /// Those of `devices` (project, external id) this replica has not seen registered.
    pub fn unknown<'a>(
        &self,
        devices: impl IntoIterator<Item = (Id, &'a str)>,
    ) -> Vec<(Id, &'a str)> {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        devices
            .into_iter()
            .filter(|(project, external)| {
                !known
                    .by_project
                    .get(project)
                    .is_some_and(|ids| ids.contains(*external))
            })
            .collect()
    }

    /// Call after the transaction that registered `devices` committed.
    pub fn remember(&self, devices: &[Device]) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for d in devices {
            if known.len >= KNOWN_DEVICES_MAX {
                *known = KnownSet::default();
            }
            if known
                .by_project
                .entry(d.project_id)
                .or_default()
                .insert(d.external_id.clone())
            {
                known.len += 1;
            }
        }
    }
}

pub fn cursor(device: &Device) -> Cursor {
    Cursor {
        key: device.external_id.clone(),
        id: device.id,
    }
}

const COLUMNS: &str = "INSERT INTO devices (id, project_id, external_id, device_type, os, \
     runtime_version, labels, first_seen_at, last_heartbeat_at) VALUES ";

/// Writes `rows` with `conflict` (an `ON CONFLICT …` clause) after the values.
async fn write(tx: &mut BulkTx<'_>, rows: &[Device], conflict: &str) -> Result<(), AppError> {
    use diesel::sql_types::{Nullable, Text, Timestamp as Time};
    for chunk in bulk::chunks(rows, 9) {
        let sql = format!(
            "{COLUMNS}{} {conflict}",
            bulk::values(tx.backend(), chunk.len(), 9)
        );
        on_bulk_tx!(tx, conn => {
            let mut query = bulk::query(conn, sql.clone());
            for d in chunk {
                query = query
                    .bind::<Text, _>(d.id)
                    .bind::<Text, _>(d.project_id)
                    .bind::<Text, _>(&d.external_id)
                    .bind::<Nullable<Text>, _>(&d.device_type)
                    .bind::<Nullable<Text>, _>(&d.os)
                    .bind::<Nullable<Text>, _>(&d.runtime_version)
                    .bind::<Text, _>(&d.labels)
                    .bind::<Time, _>(d.first_seen_at)
                    .bind::<Nullable<Time>, _>(d.last_heartbeat_at);
            }
            query.run(conn).await?;
        });
    }
    Ok(())
}

/// Registers the devices not yet known; known ones are left as they are. Rows are sorted by
/// the caller, so concurrent batches take the key locks in one order.
pub async fn register(tx: &mut BulkTx<'_>, rows: &[Device]) -> Result<(), AppError> {
    write(tx, rows, "ON CONFLICT (project_id, external_id) DO NOTHING").await
}

/// Records heartbeats: registers unknown devices and moves known ones' last heartbeat and the
/// fields a heartbeat carried (a field it left out keeps its value). `labels` says whether
/// these rows replace the stored labels.
pub async fn heartbeat(tx: &mut BulkTx<'_>, rows: &[Device], labels: bool) -> Result<(), AppError> {
    let mut conflict = String::from(
        "ON CONFLICT (project_id, external_id) DO UPDATE SET \
         last_heartbeat_at = excluded.last_heartbeat_at, \
         device_type = COALESCE(excluded.device_type, devices.device_type), \
         os = COALESCE(excluded.os, devices.os), \
         runtime_version = COALESCE(excluded.runtime_version, devices.runtime_version)",
    );
    if labels {
        conflict.push_str(", labels = excluded.labels");
    }
    write(tx, rows, &conflict).await
}

pub async fn find(db: &Db, id: Id) -> Result<Option<Device>, AppError> {
    with_conn!(db, conn => {
        Ok(devices::table.find(id).select(Device::as_select()).first(conn).await.optional()?)
    })
}

pub async fn by_external_ids(
    db: &Db,
    project_id: Id,
    external_ids: &[String],
) -> Result<Vec<Device>, AppError> {
    with_conn!(db, conn => {
        Ok(devices::table
            .filter(devices::project_id.eq(project_id))
            .filter(devices::external_id.eq_any(external_ids))
            .select(Device::as_select())
            .load(conn)
            .await?)
    })
}

/// Devices in `scope` matching `filter`, by external id.
pub async fn page(
    db: &Db,
    scope: ProjectSet,
    filter: &DeviceFilter,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<Device>, AppError> {
    let ascending = page.ascending(true);
    macro_rules! filtered {
        () => {{
            let mut query = devices::table.into_boxed();
            query = match scope {
                ProjectSet::All => query,
                ProjectSet::Organization(org) => query.filter(
                    devices::project_id.eq_any(
                        projects::table
                            .filter(projects::organization_id.eq(org))
                            .select(projects::id),
                    ),
                ),
                ProjectSet::One(project) => query.filter(devices::project_id.eq(project)),
            };
            if let Some(project) = filter.project_id {
                query = query.filter(devices::project_id.eq(project));
            }
            if let Some(device_type) = &filter.device_type {
                query = query.filter(devices::device_type.eq(device_type.clone()));
            }
            if let Some(range) = filter.heartbeat {
                match (range.since, range.before, range.never) {
                    (Some(since), None, _) => {
                        query = query.filter(devices::last_heartbeat_at.ge(since));
                    }
                    (Some(since), Some(before), _) => {
                        query = query.filter(
                            devices::last_heartbeat_at
                                .ge(since)
                                .and(devices::last_heartbeat_at.lt(before)),
                        );
                    }
                    (None, Some(before), true) => {
                        query = query.filter(
                            devices::last_heartbeat_at
                                .lt(before)
                                .or(devices::last_heartbeat_at.is_null()),
                        );
                    }
                    (None, Some(before), false) => {
                        query = query.filter(devices::last_heartbeat_at.lt(before));
                    }
                    (None, None, true) => {
                        query = query.filter(devices::last_heartbeat_at.is_null());
                    }
                    (None, None, false) => {}
                }
            }
            query
        }};
    }
    with_conn!(db, conn => {
        let total = if count_total {
            Some(filtered!().count().get_result::<i64>(conn).await?)
        } else {
            None
        };
        let mut query = filtered!();
        if let Some(c) = &page.cursor {
            let (key, id) = (c.key.clone(), c.id);
            query = if ascending {
                query.filter(
                    devices::external_id
                        .gt(key.clone())
                        .or(devices::external_id.eq(key).and(devices::id.gt(id))),
                )
            } else {
                query.filter(
                    devices::external_id
                        .lt(key.clone())
                        .or(devices::external_id.eq(key).and(devices::id.lt(id))),
                )
            };
        }
        query = if ascending {
            query.order((devices::external_id.asc(), devices::id.asc()))
        } else {
            query.order((devices::external_id.desc(), devices::id.desc()))
        };
        let rows = query
            .select(Device::as_select())
            .limit(page.limit + 1)
            .load(conn)
            .await?;
        Ok(page.finish(rows, total))
    })
}

/// Device counts of a project per device type: all, with a heartbeat at or after
/// `healthy_since`, and with one at or after `offline_since`.
pub async fn counts_by_type(
    db: &Db,
    project_id: Id,
    healthy_since: Timestamp,
    offline_since: Timestamp,
) -> Result<Vec<(Option<String>, i64, i64, i64)>, AppError> {
    use std::collections::BTreeMap;
    with_conn!(db, conn => {
        let count = |rows: Vec<(Option<String>, i64)>| rows.into_iter().collect::<BTreeMap<_, _>>();
        let all = count(
            devices::table
                .filter(devices::project_id.eq(project_id))
                .group_by(devices::device_type)
                .select((devices::device_type, diesel::dsl::count_star()))
                .load(conn)
                .await?,
        );
        let healthy = count(
            devices::table
                .filter(devices::project_id.eq(project_id))
                .filter(devices::last_heartbeat_at.ge(healthy_since))
                .group_by(devices::device_type)
                .select((devices::device_type, diesel::dsl::count_star()))
                .load(conn)
                .await?,
        );
        let reachable = count(
            devices::table
                .filter(devices::project_id.eq(project_id))
                .filter(devices::last_heartbeat_at.ge(offline_since))
                .group_by(devices::device_type)
                .select((devices::device_type, diesel::dsl::count_star()))
                .load(conn)
                .await?,
        );
        Ok(all
            .into_iter()
            .map(|(device_type, total)| {
                let h = healthy.get(&device_type).copied().unwrap_or(0);
                let r = reachable.get(&device_type).copied().unwrap_or(0);
                (device_type, total, h, r)
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Timestamp;

    fn device(project: Id, external: &str) -> Device {
        Device {
            id: Id::new(),
            project_id: project,
            external_id: external.to_owned(),
            device_type: None,
            os: None,
            runtime_version: None,
            labels: "{}".into(),
            first_seen_at: Timestamp::now(),
            last_heartbeat_at: None,
        }
    }

    #[test]
    fn known_devices_are_told_apart_by_project() {
        let (a, b) = (Id::new(), Id::new());
        let known = KnownDevices::default();
        known.remember(&[device(a, "d1"), device(a, "d1"), device(b, "d2")]);
        assert_eq!(
            known.0.lock().unwrap().len,
            2,
            "a device remembered twice counts once"
        );
        let asked = [(a, "d1"), (b, "d1"), (a, "d2"), (b, "d2")];
        assert_eq!(known.unknown(asked), vec![(b, "d1"), (a, "d2")]);
    }
}
