//! [`Store`] operations on SQLite. Each public operation is one transaction (see
//! [`SqliteStore::write`]); helpers here run inside it.

use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, ToSql};

use super::rows::{self, to_i64, JOB_COLUMNS, PROGRESS_COLUMNS, RUN_COLUMNS};
use super::{SqliteStore, Tx};
use crate::model::{
    check_text, ContentHash, Job, JobId, Lease, NewJob, PrinterProfile, RunId, SourceKind, Target,
    Timestamp,
};
use crate::progress::{ExtrusionMode, Positioning, Progress};
use crate::resume::resume_point;
use crate::state::{JobEvent, JobState};
use crate::store::{
    Change, ChangeKind, Claim, HistoryFilter, JobFilter, Placement, ResumeConfirmation,
    ResumeStart, RunKind, RunRecord, RunResult, Statistics, Store, StoreError, Totals, Usage,
};

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What [`Tx::start_run`] opens: a slicing or printing attempt under a lease.
struct RunStart<'a> {
    event: JobEvent,
    kind: RunKind,
    worker: &'a str,
    printer: Option<&'a str>,
    lease: Duration,
    note: Option<&'a str>,
}

fn text_arg(field: &'static str, text: &str) -> Result<(), StoreError> {
    check_text(field, text).map_err(|source| StoreError::InvalidArgument { field, source })
}

impl Tx<'_> {
    fn job(&self, id: JobId) -> Result<Job, StoreError> {
        let r = self
            .query_one(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id.0],
                rows::job,
            )
            .optional();
        self.db(r)?.ok_or(StoreError::NotFound(id))
    }

    /// The job, provided `lease` is still its current lease.
    fn leased_job(&self, lease: &Lease) -> Result<Job, StoreError> {
        let job = self.job(lease.job)?;
        match &job.lease {
            Some(held) if held.run == lease.run => Ok(job),
            _ => Err(StoreError::LeaseLost {
                job: lease.job,
                run: lease.run,
            }),
        }
    }

    /// Applies `event` to the job's state or fails with a typed transition error.
    fn next_state(job: &Job, event: JobEvent) -> Result<JobState, StoreError> {
        job.state
            .apply(event)
            .map_err(|source| StoreError::Transition {
                job: job.id,
                source,
            })
    }

    /// Moves a job to `state` without a lease, logging `event`.
    fn settle(
        &mut self,
        job: &Job,
        event: JobEvent,
        state: JobState,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        let finished = matches!(
            state,
            JobState::Done | JobState::Failed | JobState::Cancelled
        );
        let r = self.exec(
            "UPDATE jobs SET state = ?2, updated_at = ?3,
                 failure = COALESCE(?4, failure),
                 finished_at = CASE WHEN ?5 THEN ?3 ELSE NULL END,
                 lease_run = NULL, lease_worker = NULL, lease_printer = NULL,
                 lease_expires_at = NULL
             WHERE id = ?1",
            params![job.id.0, state.as_str(), self.now.0, failure, finished],
        );
        self.db(r)?;
        self.log(job.id, ChangeKind::Event(event), state)
    }

    /// Closes the job's open run, if any.
    fn end_run(
        &self,
        job: &Job,
        result: RunResult,
        usage: &Usage,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        let Some(lease) = &job.lease else {
            return Ok(());
        };
        let r = self.exec(
            "UPDATE runs SET ended_at = ?2, result = ?3, print_ms = ?4, filament_mm = ?5,
                 failure = ?6
             WHERE id = ?1 AND ended_at IS NULL",
            params![
                lease.run.0,
                self.now.0,
                result.as_str(),
                to_i64(millis(usage.print_time)),
                usage.filament_mm,
                failure
            ],
        );
        self.db(r).map(drop)
    }

    /// Opens a run and puts the job under a lease in `state`.
    fn start_run(&mut self, job: &Job, start: RunStart<'_>) -> Result<Claim, StoreError> {
        let RunStart {
            event,
            kind,
            worker,
            printer,
            lease,
            note,
        } = start;
        let state = Tx::next_state(job, event)?;
        let r = self.exec(
            "INSERT INTO runs (job_id, kind, worker, printer, started_at, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                job.id.0,
                rows::run_kind_name(kind),
                worker,
                printer,
                self.now.0,
                note
            ],
        );
        self.db(r)?;
        let run = RunId(self.tx.last_insert_rowid());
        let expires_at = self.now.plus_millis(millis(lease));
        let attempts_inc = i64::from(kind == RunKind::Print);
        let r = self.exec(
            "UPDATE jobs SET state = ?2, updated_at = ?3, lease_run = ?4, lease_worker = ?5,
                 lease_printer = ?6, lease_expires_at = ?7, attempts = attempts + ?8,
                 finished_at = NULL
             WHERE id = ?1",
            params![
                job.id.0,
                state.as_str(),
                self.now.0,
                run.0,
                worker,
                printer,
                expires_at.0,
                attempts_inc
            ],
        );
        self.db(r)?;
        self.log(job.id, ChangeKind::Event(event), state)?;
        let job = self.job(job.id)?;
        let lease = job
            .lease
            .clone()
            .ok_or(StoreError::LeaseLost { job: job.id, run })?;
        Ok(Claim { job, lease })
    }

    /// Reaps the given leased jobs: slicing → queued, printing/paused → interrupted.
    fn expire(&mut self, ids: Vec<i64>, why: &str) -> Result<Vec<Job>, StoreError> {
        let mut changed = Vec::with_capacity(ids.len());
        for id in ids {
            let job = self.job(JobId(id))?;
            let state = Tx::next_state(&job, JobEvent::LeaseExpired)?;
            let worker = job
                .lease
                .as_ref()
                .map(|l| l.worker.clone())
                .unwrap_or_default();
            let reason = format!("{why}: worker {worker}");
            self.end_run(
                &job,
                RunResult::Interrupted,
                &Usage::default(),
                Some(&reason),
            )?;
            self.settle(&job, JobEvent::LeaseExpired, state, Some(&reason))?;
            changed.push(self.job(job.id)?);
        }
        Ok(changed)
    }

    fn rank_of(&self, id: JobId) -> Result<f64, StoreError> {
        let r = self
            .query_one("SELECT rank FROM jobs WHERE id = ?1", [id.0], |r| r.get(0))
            .optional();
        self.db(r)?.ok_or(StoreError::NotFound(id))
    }

    /// The rank that puts `id` at `place`, or `None` if floats ran out of room between
    /// the neighbours (then the caller renumbers and asks again).
    fn rank_for(&self, id: JobId, place: Placement) -> Result<Option<f64>, StoreError> {
        let agg = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<Option<f64>, StoreError> {
            let r = self.query_one(sql, args, |r| r.get(0));
            self.db(r)
        };
        let between = |a: f64, b: f64| {
            let mid = a + (b - a) / 2.0;
            (mid > a.min(b) && mid < a.max(b)).then_some(mid)
        };
        Ok(match place {
            Placement::First => Some(
                agg("SELECT MIN(rank) FROM jobs WHERE id != ?1", &[&id.0])?
                    .map_or(0.0, |r| r - 1.0),
            ),
            Placement::Last => Some(
                agg("SELECT MAX(rank) FROM jobs WHERE id != ?1", &[&id.0])?
                    .map_or(0.0, |r| r + 1.0),
            ),
            Placement::Before(other) => {
                let o = self.rank_of(other)?;
                match agg(
                    "SELECT MAX(rank) FROM jobs WHERE id != ?1 AND rank < ?2",
                    &[&id.0, &o],
                )? {
                    Some(prev) => between(prev, o),
                    None => Some(o - 1.0),
                }
            }
            Placement::After(other) => {
                let o = self.rank_of(other)?;
                match agg(
                    "SELECT MIN(rank) FROM jobs WHERE id != ?1 AND rank > ?2",
                    &[&id.0, &o],
                )? {
                    Some(next) => between(o, next),
                    None => Some(o + 1.0),
                }
            }
        })
    }
}

impl SqliteStore {
    fn claim(
        &self,
        operation: &'static str,
        select: &str,
        args: Vec<Value>,
        claim: impl FnOnce(&mut Tx<'_>, &Job) -> Result<Claim, StoreError>,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        self.write(operation, now, |w| {
            // SQLite has one writer at a time (BEGIN IMMEDIATE), so the SELECT's pick cannot be
            // taken by anyone else before the UPDATE; PostgreSQL gets FOR UPDATE SKIP LOCKED.
            let r = w
                .query_one(select, params_from_iter(args), |r| r.get::<_, i64>(0))
                .optional();
            let Some(id) = w.db(r)? else {
                return Ok(None);
            };
            let job = w.job(JobId(id))?;
            claim(w, &job).map(Some)
        })
    }
}

impl SqliteStore {
    /// Ends a slicing run successfully with `event` (ready to print, or done).
    fn sliced(
        &self,
        lease: &Lease,
        gcode: &ContentHash,
        event: JobEvent,
        now: Timestamp,
    ) -> Result<Job, StoreError> {
        self.write("finish slicing", now, |w| {
            let job = w.leased_job(lease)?;
            let state = Tx::next_state(&job, event)?;
            w.end_run(&job, RunResult::Completed, &Usage::default(), None)?;
            let r = w.exec(
                "UPDATE jobs SET gcode_hash = ?2 WHERE id = ?1",
                params![job.id.0, gcode.as_str()],
            );
            w.db(r)?;
            w.settle(&job, event, state, None)?;
            w.job(job.id)
        })
    }
}

/// The `jobs` columns a [`Target`] is stored in, in the order of [`TargetColumns::values`].
const TARGET_COLUMNS: &str =
    "target_printer, req_nozzle_um, req_material, req_x_mm, req_y_mm, req_z_mm";

/// A target as the values of [`TARGET_COLUMNS`].
struct TargetColumns<'a> {
    printer: Option<&'a str>,
    nozzle_um: Option<u32>,
    material: Option<&'a str>,
    volume: [Option<f64>; 3],
}

impl TargetColumns<'_> {
    fn of(target: &Target) -> TargetColumns<'_> {
        match target {
            Target::Printer(p) => TargetColumns {
                printer: Some(p),
                nozzle_um: None,
                material: None,
                volume: [None; 3],
            },
            Target::Any(req) => {
                let v = req.min_build_volume;
                TargetColumns {
                    printer: None,
                    nozzle_um: req.nozzle_um,
                    material: req.material.as_deref(),
                    volume: [v.map(|v| v.x_mm), v.map(|v| v.y_mm), v.map(|v| v.z_mm)],
                }
            }
        }
    }

    /// The values of [`TARGET_COLUMNS`], in order; statements bind them after their other
    /// parameters.
    fn values(&self) -> [&dyn ToSql; 6] {
        let [x, y, z] = &self.volume;
        [&self.printer, &self.nozzle_um, &self.material, x, y, z]
    }
}

impl Store for SqliteStore {
    fn enqueue(&self, job: &NewJob, now: Timestamp) -> Result<Job, StoreError> {
        job.validate()?;
        let (state, gcode) = match job.source.kind {
            SourceKind::Model => (JobState::Queued, None),
            SourceKind::Gcode => (JobState::Ready, Some(job.source.hash.as_str())),
        };
        let t = TargetColumns::of(&job.target);
        self.write("enqueue", now, |w| {
            let settings = job.settings.to_string();
            let not_before = job.not_before.map(|t| t.0);
            let fields: [&dyn ToSql; 11] = [
                &job.owner,
                &job.source.hash.as_str(),
                &job.source.file_name,
                &job.source.kind.as_str(),
                &gcode,
                &settings,
                &job.priority,
                &job.copies,
                &not_before,
                &state.as_str(),
                &now.0,
            ];
            let r = w.exec(
                &format!(
                    "INSERT INTO jobs (owner, source_hash, source_name, source_kind, gcode_hash,
                         settings, priority, rank, copies, not_before, state, created_at,
                         updated_at, {TARGET_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, (SELECT COALESCE(MAX(rank), 0) + 1 FROM jobs),
                         ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                ),
                params_from_iter(fields.into_iter().chain(t.values())),
            );
            w.db(r)?;
            let id = JobId(w.tx.last_insert_rowid());
            w.log(id, ChangeKind::Enqueued, state)?;
            w.job(id)
        })
    }

    fn job(&self, id: JobId) -> Result<Job, StoreError> {
        self.read("read job", |c| {
            c.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?
                .query_row([id.0], rows::job)
                .optional()
        })?
        .ok_or(StoreError::NotFound(id))
    }

    fn reorder(&self, id: JobId, place: Placement, now: Timestamp) -> Result<Job, StoreError> {
        self.write("reorder", now, |w| {
            let job = w.job(id)?;
            if matches!(place, Placement::Before(o) | Placement::After(o) if o == id) {
                return Ok(job);
            }
            let rank = match w.rank_for(id, place)? {
                Some(rank) => rank,
                None => {
                    // Neighbours' ranks are adjacent floats: renumber everything 1, 2, 3…
                    let r = w.exec(
                        "WITH o AS (SELECT id, ROW_NUMBER() OVER (ORDER BY rank, id) AS n FROM jobs)
                         UPDATE jobs SET rank = (SELECT n FROM o WHERE o.id = jobs.id)",
                        [],
                    );
                    w.db(r)?;
                    w.rank_for(id, place)?.ok_or_else(|| StoreError::Backend {
                        path: w.path.to_path_buf(),
                        operation: "reorder",
                        detail: "no rank between neighbours after renumbering".into(),
                    })?
                }
            };
            let r = w.exec(
                "UPDATE jobs SET rank = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.0, rank, now.0],
            );
            w.db(r)?;
            w.log(id, ChangeKind::Reordered, job.state)?;
            w.job(id)
        })
    }

    fn set_priority(&self, id: JobId, priority: i32, now: Timestamp) -> Result<Job, StoreError> {
        self.write("set priority", now, |w| {
            let job = w.job(id)?;
            let r = w.exec(
                "UPDATE jobs SET priority = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.0, priority, now.0],
            );
            w.db(r)?;
            w.log(id, ChangeKind::PriorityChanged, job.state)?;
            w.job(id)
        })
    }

    fn set_not_before(
        &self,
        id: JobId,
        not_before: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Job, StoreError> {
        self.write("set not_before", now, |w| {
            let job = w.job(id)?;
            let r = w.exec(
                "UPDATE jobs SET not_before = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.0, not_before.map(|t| t.0), now.0],
            );
            w.db(r)?;
            w.log(id, ChangeKind::Rescheduled, job.state)?;
            w.job(id)
        })
    }

    fn set_target(&self, id: JobId, target: &Target, now: Timestamp) -> Result<Job, StoreError> {
        target.validate()?;
        let t = TargetColumns::of(target);
        self.write("set target", now, |w| {
            let job = w.job(id)?;
            if !matches!(
                job.state,
                JobState::Queued | JobState::Ready | JobState::Interrupted
            ) {
                return Err(StoreError::NotWaiting {
                    job: id,
                    state: job.state,
                });
            }
            let fields: [&dyn ToSql; 2] = [&id.0, &now.0];
            let r = w.exec(
                &format!(
                    "UPDATE jobs SET updated_at = ?2, ({TARGET_COLUMNS}) = (?3, ?4, ?5, ?6, ?7, ?8)
                     WHERE id = ?1"
                ),
                params_from_iter(fields.into_iter().chain(t.values())),
            );
            w.db(r)?;
            w.log(id, ChangeKind::Retargeted, job.state)?;
            w.job(id)
        })
    }

    fn cancel(&self, id: JobId, now: Timestamp) -> Result<Job, StoreError> {
        self.write("cancel", now, |w| {
            let job = w.job(id)?;
            let state = Tx::next_state(&job, JobEvent::Cancel)?;
            w.end_run(&job, RunResult::Cancelled, &Usage::default(), None)?;
            w.settle(&job, JobEvent::Cancel, state, None)?;
            w.job(id)
        })
    }

    fn claim_slicing(
        &self,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        text_arg("worker", worker)?;
        let select = "SELECT id FROM jobs WHERE state = 'queued'
                      ORDER BY priority DESC, rank, id LIMIT 1";
        self.claim(
            "claim slicing",
            select,
            Vec::new(),
            |w, job| {
                w.start_run(
                    job,
                    RunStart {
                        event: JobEvent::StartSlicing,
                        kind: RunKind::Slice,
                        worker,
                        printer: None,
                        lease,
                        note: None,
                    },
                )
            },
            now,
        )
    }

    fn finish_slicing(
        &self,
        lease: &Lease,
        gcode: &ContentHash,
        now: Timestamp,
    ) -> Result<Job, StoreError> {
        self.sliced(lease, gcode, JobEvent::SlicingDone, now)
    }

    fn finish_slicing_only(
        &self,
        lease: &Lease,
        gcode: &ContentHash,
        now: Timestamp,
    ) -> Result<Job, StoreError> {
        self.sliced(lease, gcode, JobEvent::SlicedOnly, now)
    }

    fn claim_print(
        &self,
        printer: &PrinterProfile,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        text_arg("printer id", &printer.id)?;
        text_arg("worker", worker)?;
        // Same rule as PrinterProfile::accepts, in SQL.
        let select = "SELECT id FROM jobs
             WHERE state = 'ready'
               AND (not_before IS NULL OR not_before <= ?1)
               AND (target_printer = ?2 OR (target_printer IS NULL
                    AND (req_nozzle_um IS NULL OR req_nozzle_um = ?3)
                    AND (req_material IS NULL OR req_material = ?4)
                    AND (req_x_mm IS NULL
                         OR (req_x_mm <= ?5 AND req_y_mm <= ?6 AND req_z_mm <= ?7))))
             ORDER BY priority DESC, rank, id LIMIT 1";
        let v = &printer.build_volume;
        let args = vec![
            Value::Integer(now.0),
            Value::Text(printer.id.clone()),
            Value::Integer(i64::from(printer.nozzle_um)),
            printer.material.clone().map_or(Value::Null, Value::Text),
            Value::Real(v.x_mm),
            Value::Real(v.y_mm),
            Value::Real(v.z_mm),
        ];
        self.claim(
            "claim print",
            select,
            args,
            |w, job| {
                // A fresh print from the first line: the old resume record no longer applies.
                let r = w.exec("DELETE FROM progress WHERE job_id = ?1", [job.id.0]);
                w.db(r)?;
                w.start_run(
                    job,
                    RunStart {
                        event: JobEvent::StartPrint,
                        kind: RunKind::Print,
                        worker,
                        printer: Some(&printer.id),
                        lease,
                        note: None,
                    },
                )
            },
            now,
        )
    }

    fn heartbeat(
        &self,
        lease: &Lease,
        extend: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        self.write("heartbeat", now, |w| {
            let job = w.leased_job(lease)?;
            let expires_at = now.plus_millis(millis(extend));
            let r = w.exec(
                "UPDATE jobs SET lease_expires_at = ?2 WHERE id = ?1",
                params![job.id.0, expires_at.0],
            );
            w.db(r)?;
            let mut renewed = lease.clone();
            renewed.expires_at = expires_at;
            Ok(renewed)
        })
    }

    fn record_progress(
        &self,
        lease: &Lease,
        p: &Progress,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let layer = p.layer;
        let fan = i64::from(p.fan);
        let args = params![
            lease.job.0,
            lease.run.0,
            to_i64(p.line),
            to_i64(p.byte_offset),
            layer.map(|l| l.number),
            layer.map(|l| to_i64(l.line)),
            layer.map(|l| to_i64(l.byte_offset)),
            layer.map(|l| l.z),
            layer.map(|l| l.e),
            p.z,
            p.e,
            p.extrusion == ExtrusionMode::Relative,
            p.positioning == Positioning::Relative,
            p.hotend_c,
            p.bed_c,
            fan,
            p.feedrate_mm_min,
            now.0,
        ];
        let sync = self.options.progress_synchronous;
        self.write_with("record progress", now, sync, |w| {
            // One statement: the lease check is the WHERE clause, the row is overwritten
            // in place, so a progress commit touches a page or two.
            let r = w.exec(
                "INSERT INTO progress (job_id, run_id, line, byte_offset, layer, layer_line,
                         layer_byte_offset, layer_z, layer_e, z, e, relative_e, relative_xyz,
                         hotend_c, bed_c, fan, feedrate, updated_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                         ?16, ?17, ?18
                     FROM jobs WHERE id = ?1 AND lease_run = ?2
                         AND state IN ('printing', 'paused')
                     ON CONFLICT (job_id) DO UPDATE SET run_id = excluded.run_id,
                         line = excluded.line, byte_offset = excluded.byte_offset,
                         layer = excluded.layer, layer_line = excluded.layer_line,
                         layer_byte_offset = excluded.layer_byte_offset,
                         layer_z = excluded.layer_z, layer_e = excluded.layer_e,
                         z = excluded.z, e = excluded.e, relative_e = excluded.relative_e,
                         relative_xyz = excluded.relative_xyz, hotend_c = excluded.hotend_c,
                         bed_c = excluded.bed_c, fan = excluded.fan,
                         feedrate = excluded.feedrate, updated_at = excluded.updated_at",
                args,
            );
            if w.db(r)? == 0 {
                return Err(StoreError::LeaseLost {
                    job: lease.job,
                    run: lease.run,
                });
            }
            let (seq, state) = w.db(w.query_one(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM changes), state
                     FROM jobs WHERE id = ?1",
                [lease.job.0],
                |r| Ok((r.get::<_, i64>(0)?, rows::state(r, 1)?)),
            ))?;
            w.changes.push(Change {
                seq: u64::try_from(seq).unwrap_or(0),
                job: lease.job,
                kind: ChangeKind::Progress,
                state,
                at: now,
            });
            Ok(())
        })
    }

    fn pause(&self, lease: &Lease, now: Timestamp) -> Result<Job, StoreError> {
        self.leased_event(lease, JobEvent::Pause, now)
    }

    fn continue_print(&self, lease: &Lease, now: Timestamp) -> Result<Job, StoreError> {
        self.leased_event(lease, JobEvent::Continue, now)
    }

    fn complete(&self, lease: &Lease, usage: &Usage, now: Timestamp) -> Result<Job, StoreError> {
        self.write("complete", now, |w| {
            let job = w.leased_job(lease)?;
            let copies_left = job.copies_done.saturating_add(1) < job.copies;
            let event = JobEvent::Complete { copies_left };
            let state = Tx::next_state(&job, event)?;
            w.end_run(&job, RunResult::Completed, usage, None)?;
            let r = w.exec(
                "UPDATE jobs SET copies_done = copies_done + 1 WHERE id = ?1",
                [job.id.0],
            );
            w.db(r)?;
            let r = w.exec("DELETE FROM progress WHERE job_id = ?1", [job.id.0]);
            w.db(r)?;
            w.settle(&job, event, state, None)?;
            w.job(job.id)
        })
    }

    fn fail(
        &self,
        lease: &Lease,
        reason: &str,
        usage: &Usage,
        now: Timestamp,
    ) -> Result<Job, StoreError> {
        text_arg("failure reason", reason)?;
        self.write("fail", now, |w| {
            let job = w.leased_job(lease)?;
            let state = Tx::next_state(&job, JobEvent::Fail)?;
            w.end_run(&job, RunResult::Failed, usage, Some(reason))?;
            w.settle(&job, JobEvent::Fail, state, Some(reason))?;
            w.job(job.id)
        })
    }

    fn abandon(&self, id: JobId, reason: &str, now: Timestamp) -> Result<Job, StoreError> {
        text_arg("failure reason", reason)?;
        self.write("abandon", now, |w| {
            let job = w.job(id)?;
            if job.state != JobState::Interrupted {
                return Err(StoreError::Transition {
                    job: id,
                    source: crate::TransitionError {
                        from: job.state,
                        event: JobEvent::Fail,
                    },
                });
            }
            w.settle(&job, JobEvent::Fail, JobState::Failed, Some(reason))?;
            w.job(id)
        })
    }

    fn retry(&self, id: JobId, now: Timestamp) -> Result<Job, StoreError> {
        self.write("retry", now, |w| {
            let job = w.job(id)?;
            let event = JobEvent::Retry {
                sliced: job.gcode.is_some(),
            };
            let state = Tx::next_state(&job, event)?;
            // A retry starts from the first line: the old resume record no longer applies.
            let r = w.exec("DELETE FROM progress WHERE job_id = ?1", [id.0]);
            w.db(r)?;
            w.settle(&job, event, state, None)?;
            w.job(id)
        })
    }

    fn expire_leases(&self, now: Timestamp) -> Result<Vec<Job>, StoreError> {
        self.write("expire leases", now, |w| {
            let ids = w.db(w
                .tx
                .prepare_cached(
                    "SELECT id FROM jobs WHERE state IN ('slicing', 'printing', 'paused')
                         AND lease_expires_at < ?1
                     ORDER BY id",
                )
                .and_then(|mut s| s.query_map([now.0], |r| r.get(0))?.collect()))?;
            w.expire(ids, "lease expired without a heartbeat")
        })
    }

    fn release_worker(&self, worker: &str, now: Timestamp) -> Result<Vec<Job>, StoreError> {
        self.write("release worker", now, |w| {
            let ids = w.db(w
                .tx
                .prepare_cached(
                    "SELECT id FROM jobs WHERE state IN ('slicing', 'printing', 'paused')
                         AND lease_worker = ?1
                     ORDER BY id",
                )
                .and_then(|mut s| s.query_map([worker], |r| r.get(0))?.collect()))?;
            w.expire(ids, "released after a restart")
        })
    }

    fn resume_record(&self, id: JobId) -> Result<Option<Progress>, StoreError> {
        self.job(id)?;
        self.read("read progress", |c| {
            c.prepare_cached(&format!(
                "SELECT {PROGRESS_COLUMNS} FROM progress WHERE job_id = ?1"
            ))?
            .query_row([id.0], rows::progress)
            .optional()
        })
    }

    fn confirm_resume(
        &self,
        id: JobId,
        confirmation: &ResumeConfirmation,
        printer: &PrinterProfile,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<ResumeStart, StoreError> {
        text_arg("confirmed by", &confirmation.confirmed_by)?;
        text_arg("printer id", &printer.id)?;
        text_arg("worker", worker)?;
        self.write("confirm resume", now, |w| {
            let job = w.job(id)?;
            Tx::next_state(&job, JobEvent::ConfirmResume)?;
            if !printer.accepts(&job.target) {
                return Err(StoreError::PrinterMismatch {
                    job: id,
                    printer: printer.id.clone(),
                });
            }
            let r = w
                .query_one(
                    &format!("SELECT {PROGRESS_COLUMNS} FROM progress WHERE job_id = ?1"),
                    [id.0],
                    rows::progress,
                )
                .optional();
            let progress = w.db(r)?.ok_or(StoreError::NoResumeRecord(id))?;
            let point = resume_point(&progress, confirmation.from)
                .map_err(|source| StoreError::Resume { job: id, source })?;
            let note = format!(
                "resumed at line {} (byte {}) confirmed by {}",
                point.start_line, point.start_byte_offset, confirmation.confirmed_by
            );
            let claim = w.start_run(
                &job,
                RunStart {
                    event: JobEvent::ConfirmResume,
                    kind: RunKind::Print,
                    worker,
                    printer: Some(&printer.id),
                    lease,
                    note: Some(&note),
                },
            )?;
            Ok(ResumeStart {
                job: claim.job,
                lease: claim.lease,
                point,
            })
        })
    }

    fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1");
        let mut args: Vec<Value> = Vec::new();
        if !filter.states.is_empty() {
            let marks = vec!["?"; filter.states.len()].join(", ");
            sql.push_str(&format!(" AND state IN ({marks})"));
            args.extend(filter.states.iter().map(|s| Value::Text(s.as_str().into())));
        }
        if let Some(owner) = &filter.owner {
            sql.push_str(" AND owner = ?");
            args.push(Value::Text(owner.clone()));
        }
        sql.push_str(" ORDER BY priority DESC, rank, id");
        push_limit(&mut sql, &mut args, filter.limit);
        self.read("list jobs", |c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(args), rows::job)?
                .collect()
        })
    }

    fn history(&self, filter: &HistoryFilter) -> Result<Vec<RunRecord>, StoreError> {
        let (mut sql, mut args) = history_where(
            format!("SELECT {RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE 1"),
            filter,
        );
        sql.push_str(" ORDER BY r.id DESC");
        push_limit(&mut sql, &mut args, filter.limit);
        self.read("read history", |c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(args), rows::run)?
                .collect()
        })
    }

    fn statistics(&self, filter: &HistoryFilter) -> Result<Statistics, StoreError> {
        let totals = |key: &str| -> Result<Vec<Totals>, StoreError> {
            let (mut sql, args) = history_where(
                format!(
                    "SELECT {key}, SUM(r.result = 'completed'), SUM(r.result != 'completed'),
                         SUM(r.print_ms), SUM(r.filament_mm)
                     FROM runs r JOIN jobs j ON j.id = r.job_id
                     WHERE r.kind = 'print' AND r.ended_at IS NOT NULL AND {key} IS NOT NULL"
                ),
                filter,
            );
            sql.push_str(&format!(" GROUP BY {key} ORDER BY {key}"));
            self.read("statistics", |c| {
                c.prepare_cached(&sql)?
                    .query_map(params_from_iter(args), |r| {
                        let n = |i| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                        Ok(Totals {
                            key: r.get(0)?,
                            completed: n(1)?,
                            unsuccessful: n(2)?,
                            print_time: Duration::from_millis(n(3)?),
                            filament_mm: r.get(4)?,
                        })
                    })?
                    .collect()
            })
        };
        Ok(Statistics {
            per_owner: totals("j.owner")?,
            per_printer: totals("r.printer")?,
        })
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.read("read changes", |c| {
            c.prepare_cached(
                "SELECT seq, job_id, kind, state, at FROM changes WHERE seq > ?1
                 ORDER BY seq LIMIT ?2",
            )?
            .query_map(
                params![to_i64(after), i64::try_from(limit).unwrap_or(i64::MAX)],
                rows::change,
            )?
            .collect()
        })
    }
}

impl SqliteStore {
    fn leased_event(
        &self,
        lease: &Lease,
        event: JobEvent,
        now: Timestamp,
    ) -> Result<Job, StoreError> {
        self.write(event.as_str(), now, |w| {
            let job = w.leased_job(lease)?;
            let state = Tx::next_state(&job, event)?;
            let r = w.exec(
                "UPDATE jobs SET state = ?2, updated_at = ?3 WHERE id = ?1",
                params![job.id.0, state.as_str(), now.0],
            );
            w.db(r)?;
            w.log(job.id, ChangeKind::Event(event), state)?;
            w.job(job.id)
        })
    }
}

fn push_limit(sql: &mut String, args: &mut Vec<Value>, limit: usize) {
    if limit > 0 {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    }
}

fn history_where(mut sql: String, f: &HistoryFilter) -> (String, Vec<Value>) {
    let mut args = Vec::new();
    let mut add = |clause: &str, v: Value| {
        sql.push_str(clause);
        args.push(v);
    };
    if let Some(job) = f.job {
        add(" AND r.job_id = ?", Value::Integer(job.0));
    }
    if let Some(owner) = &f.owner {
        add(" AND j.owner = ?", Value::Text(owner.clone()));
    }
    if let Some(printer) = &f.printer {
        add(" AND r.printer = ?", Value::Text(printer.clone()));
    }
    if let Some(kind) = f.kind {
        add(
            " AND r.kind = ?",
            Value::Text(rows::run_kind_name(kind).into()),
        );
    }
    if let Some(result) = f.result {
        add(" AND r.result = ?", Value::Text(result.as_str().into()));
    }
    if let Some(since) = f.since {
        add(" AND r.started_at >= ?", Value::Integer(since.0));
    }
    if let Some(until) = f.until {
        add(" AND r.started_at < ?", Value::Integer(until.0));
    }
    if f.ended {
        sql.push_str(" AND r.ended_at IS NOT NULL");
    }
    (sql, args)
}
