//! `dcos job …` (Metronome API at `/service/metronome/v1`).

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::Value;

use super::Ctx;
use crate::client::{query_value, Api};
use crate::error::{CliError, Result};
use crate::output::{cell, print_json, print_table, truncate};
use crate::{read_json_file, JobCmd, ScheduleCmd};

const BASE: &str = "/service/metronome/v1";
const EMBED: &str = "embed=activeRuns&embed=schedules&embed=historySummary";

fn job_path(id: &str) -> String {
    format!("{BASE}/jobs/{}", query_value(id.trim_matches('/')))
}

fn job_id_of(v: &Value) -> Result<String> {
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            CliError::usage(
                "the job definition has no \"id\"",
                "add an \"id\": \"my-job\" field (lowercase, dot-separated)",
            )
        })
}

pub fn run(ctx: &Ctx, cmd: JobCmd) -> Result<()> {
    let api = &ctx.api;
    match cmd {
        JobCmd::List { json } => {
            let v = api.get_json(&format!("{BASE}/jobs?{EMBED}"))?;
            if json {
                print_json(&v);
            } else {
                let jobs = v.as_array().cloned().unwrap_or_default();
                print_table(
                    &[
                        "ID",
                        "STATUS",
                        "NEXT RUN",
                        "LAST SUCCESS",
                        "LAST FAILURE",
                        "DESCRIPTION",
                    ],
                    &job_rows(&jobs),
                );
            }
            Ok(())
        }
        JobCmd::Add { file } => {
            let mut job = read_json_file(&file)?;
            let id = job_id_of(&job)?;
            // Like the DC/OS CLI: the job first, then its schedules through their resource.
            let schedules = job
                .as_object_mut()
                .and_then(|o| o.remove("schedules"))
                .and_then(|s| s.as_array().cloned())
                .unwrap_or_default();
            api.send_json(Method::POST, &format!("{BASE}/jobs"), &job)?;
            for s in &schedules {
                api.send_json(Method::POST, &format!("{}/schedules", job_path(&id)), s)?;
            }
            println!(
                "Created job {id}{}",
                if schedules.is_empty() {
                    String::new()
                } else {
                    format!(" with {} schedule(s)", schedules.len())
                }
            );
            Ok(())
        }
        JobCmd::Show { job_id } => {
            print_json(&api.get_json(&format!("{}?{EMBED}", job_path(&job_id)))?);
            Ok(())
        }
        JobCmd::Update { file } => {
            let mut job = read_json_file(&file)?;
            let id = job_id_of(&job)?;
            if let Some(o) = job.as_object_mut() {
                o.remove("schedules");
            }
            api.send_json(Method::PUT, &job_path(&id), &job)?;
            println!("Updated job {id}");
            Ok(())
        }
        JobCmd::Remove {
            job_id,
            stop_current_job_runs,
        } => {
            let resp = api.send(api.request(
                Method::DELETE,
                &format!(
                    "{}?stopCurrentJobRuns={stop_current_job_runs}",
                    job_path(&job_id)
                ),
            ))?;
            if resp.status().as_u16() == 409 {
                let err = api.error_from(resp);
                return Err(CliError::failed_hint(
                    err.to_string(),
                    "pass --stop-current-job-runs to stop them and remove the job",
                ));
            }
            if !resp.status().is_success() {
                return Err(api.error_from(resp));
            }
            eprintln!("Removed job {job_id}");
            Ok(())
        }
        JobCmd::Run { job_id, json } => {
            let v = api.json(
                api.request(Method::POST, &format!("{}/runs", job_path(&job_id)))
                    .header(CONTENT_TYPE, "application/json")
                    .body(""),
            )?;
            if json {
                print_json(&v);
            } else {
                println!("Run ID: {}", cell(v.get("id")));
            }
            Ok(())
        }
        JobCmd::Kill {
            job_id,
            run_id,
            all,
        } => {
            let runs: Vec<String> = match (run_id, all) {
                (Some(r), false) => vec![r],
                (None, true) => api
                    .get_json(&format!("{}/runs", job_path(&job_id)))?
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.get("id").and_then(Value::as_str))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => {
                    return Err(CliError::usage(
                        "name one run to stop, or pass --all",
                        format!("see the active runs with `dcos job show {job_id}`"),
                    ))
                }
            };
            for r in &runs {
                api.json(
                    api.request(
                        Method::POST,
                        &format!("{}/runs/{}/actions/stop", job_path(&job_id), query_value(r)),
                    )
                    .header(CONTENT_TYPE, "application/json")
                    .body("{}"),
                )?;
                println!("Stopped run {r}");
            }
            if runs.is_empty() {
                println!("No active runs of {job_id}");
            }
            Ok(())
        }
        JobCmd::History {
            job_id,
            show_failures,
            json,
        } => {
            let v = api.get_json(&format!("{}?embed=history", job_path(&job_id)))?;
            let h = v.get("history").cloned().unwrap_or(Value::Null);
            if json {
                print_json(&h);
                return Ok(());
            }
            println!(
                "'{job_id}': {} successful, {} failed; last success {}, last failure {}",
                cell(h.get("successCount")),
                cell(h.get("failureCount")),
                date_or_dash(h.get("lastSuccessAt")),
                date_or_dash(h.get("lastFailureAt")),
            );
            let mut rows = Vec::new();
            let lists: &[(&str, &str)] = if show_failures {
                &[("failedFinishedRuns", "FAILED")]
            } else {
                &[
                    ("successfulFinishedRuns", "SUCCESS"),
                    ("failedFinishedRuns", "FAILED"),
                ]
            };
            for (key, status) in lists {
                for r in h.get(*key).and_then(Value::as_array).into_iter().flatten() {
                    rows.push(vec![
                        cell(r.get("id")),
                        status.to_string(),
                        date_or_dash(r.get("createdAt")),
                        date_or_dash(r.get("finishedAt")),
                    ]);
                }
            }
            rows.sort_by(|a, b| b[2].cmp(&a[2]));
            print_table(&["RUN ID", "STATUS", "STARTED", "FINISHED"], &rows);
            Ok(())
        }
        JobCmd::Schedule(s) => schedule(api, s),
    }
}

fn schedule(api: &Api, cmd: ScheduleCmd) -> Result<()> {
    match cmd {
        ScheduleCmd::Show { job_id, json } => {
            let v = api.get_json(&format!("{}/schedules", job_path(&job_id)))?;
            if json {
                print_json(&v);
            } else {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        vec![
                            cell(s.get("id")),
                            cell(s.get("cron")),
                            cell(s.get("timezone")),
                            cell(s.get("enabled")),
                            cell(s.get("concurrencyPolicy")),
                            date_or_dash(s.get("nextRunAt")),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ID",
                        "CRON",
                        "TIMEZONE",
                        "ENABLED",
                        "CONCURRENCY",
                        "NEXT RUN",
                    ],
                    &rows,
                );
            }
            Ok(())
        }
        ScheduleCmd::Add { job_id, file } => {
            let s = read_json_file(&file)?;
            let v = api.send_json(
                Method::POST,
                &format!("{}/schedules", job_path(&job_id)),
                &s,
            )?;
            println!(
                "Added schedule {} to {job_id} (next run {})",
                cell(v.get("id")),
                date_or_dash(v.get("nextRunAt"))
            );
            Ok(())
        }
        ScheduleCmd::Update { job_id, file } => {
            let s = read_json_file(&file)?;
            let sid = s
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    CliError::usage("the schedule has no \"id\"", "add the id of the schedule")
                })?
                .to_string();
            api.send_json(
                Method::PUT,
                &format!("{}/schedules/{}", job_path(&job_id), query_value(&sid)),
                &s,
            )?;
            println!("Updated schedule {sid} of {job_id}");
            Ok(())
        }
        ScheduleCmd::Remove {
            job_id,
            schedule_id,
        } => {
            api.send_ok(api.request(
                Method::DELETE,
                &format!(
                    "{}/schedules/{}",
                    job_path(&job_id),
                    query_value(&schedule_id)
                ),
            ))?;
            println!("Removed schedule {schedule_id} of {job_id}");
            Ok(())
        }
    }
}

fn date_or_dash(v: Option<&Value>) -> String {
    match v.and_then(Value::as_str) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "-".into(),
    }
}

/// Rows of `dcos job list`: STATUS is `Running` with active runs, else `Scheduled` when an
/// enabled schedule exists, else `Unscheduled` (as the DC/OS CLI shows it).
pub fn job_rows(jobs: &[Value]) -> Vec<Vec<String>> {
    jobs.iter()
        .map(|j| {
            let active = j
                .get("activeRuns")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            let schedule = j.get("schedules").and_then(Value::as_array).and_then(|s| {
                s.iter()
                    .find(|s| s.get("enabled") != Some(&Value::Bool(false)))
            });
            let status = if active {
                "Running"
            } else if schedule.is_some() {
                "Scheduled"
            } else {
                "Unscheduled"
            };
            let summary = j.get("historySummary");
            vec![
                cell(j.get("id")),
                status.to_string(),
                date_or_dash(schedule.and_then(|s| s.get("nextRunAt"))),
                date_or_dash(summary.and_then(|s| s.get("lastSuccessAt"))),
                date_or_dash(summary.and_then(|s| s.get("lastFailureAt"))),
                truncate(&cell(j.get("description")), 40),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_list_status_follows_runs_and_schedules() {
        let jobs = [
            json!({"id":"a","activeRuns":[{"id":"r"}],"schedules":[]}),
            json!({"id":"b","schedules":[{"id":"s","enabled":true,"nextRunAt":"2026-11-22T00:00:00.000+0000"}],
                   "historySummary":{"lastSuccessAt":"2026-11-21T10:00:00.000+0000","lastFailureAt":null}}),
            json!({"id":"c","schedules":[{"id":"s","enabled":false}],"description":"nightly"}),
        ];
        let rows = job_rows(&jobs);
        assert_eq!(rows[0][1], "Running");
        assert_eq!(rows[1][1], "Scheduled");
        assert_eq!(rows[1][2], "2026-11-22T00:00:00.000+0000");
        assert_eq!(rows[1][3], "2026-11-21T10:00:00.000+0000");
        assert_eq!(rows[1][4], "-");
        assert_eq!(
            rows[2][1], "Unscheduled",
            "a disabled schedule does not count"
        );
        assert_eq!(rows[2][5], "nightly");
    }
}
