//! One id length limit for everything that becomes a task, derived from what an agent can use
//! as a path.
//!
//! An agent names files after a task id: the checkpoint `meta/tasks/<task id>.json` and the
//! sandbox folder `…/executors/<task id>/…`. Linux allows file names of at most
//! [`MAX_FILE_NAME`] bytes (`NAME_MAX`), so a task id is at most [`MAX_TASK_ID_LEN`] bytes.
//! Schedulers make task ids from a service id plus a suffix:
//!
//! * Marathon: `<app id with / as _>.<uuid>` (37 bytes after the id);
//! * Metronome: `<job id>_<run id>.<uuid>` (1 + 19 + 1 + 36 = 57 bytes after the id).
//!
//! So an app or job id is at most [`MAX_SERVICE_ID_LEN`] bytes (an app's leading `/` not
//! counted): longer ones are refused with a 422 when they are created, instead of being
//! accepted and then failing every launch with "File name too long".

/// Linux's `NAME_MAX`: the longest file name, in bytes.
pub const MAX_FILE_NAME: usize = 255;

/// The longest task id: its checkpoint file `<task id>.json` must be a valid file name.
pub const MAX_TASK_ID_LEN: usize = MAX_FILE_NAME - ".json".len();

/// The longest suffix a scheduler adds to a service id to make a task id (Metronome's
/// `_<14-digit timestamp + 5 chars>.<uuid>`).
pub const MAX_TASK_ID_SUFFIX: usize = 1 + 19 + 1 + 36;

/// The longest app id (without its leading `/`) or job id.
pub const MAX_SERVICE_ID_LEN: usize = MAX_TASK_ID_LEN - MAX_TASK_ID_SUFFIX;

/// Checks a service id's length (an app id with its leading `/` stripped, or a job id).
/// The error is the message to put beside the id's field path.
pub fn check_service_id_len(id: &str) -> Result<(), String> {
    let id = id.strip_prefix('/').unwrap_or(id);
    if id.len() > MAX_SERVICE_ID_LEN {
        return Err(format!(
            "is too long: {} characters, at most {MAX_SERVICE_ID_LEN} (task ids made from it \
             name files on agents, and a file name is at most {MAX_FILE_NAME} bytes)",
            id.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_fits_the_longest_task_file_name() {
        assert_eq!(MAX_SERVICE_ID_LEN, 193);
        let id = "a".repeat(MAX_SERVICE_ID_LEN);
        assert!(check_service_id_len(&id).is_ok());
        assert!(check_service_id_len(&format!("/{id}")).is_ok());
        assert!(check_service_id_len(&format!("{id}b")).is_err());
        // The longest Metronome task id's checkpoint is a valid file name.
        let task = format!("{id}_20261207000000ABCDE.{}", uuid_like());
        assert_eq!(format!("{task}.json").len(), MAX_FILE_NAME);
    }

    fn uuid_like() -> String {
        "0".repeat(36)
    }
}
