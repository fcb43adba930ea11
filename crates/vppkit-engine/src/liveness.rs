//! Telling whether the instance that holds a lease is gone, so its leases are taken over at
//! once instead of waited out.
//!
//! A lease names its holder by [`EngineConfig::instance_id`]. When an instance dies (a crash,
//! `kill -9`, a power cut), its leases stay until they expire ([`EngineConfig::lease_duration`],
//! 2 minutes by default): the next instance waits, because from the store alone a slow holder
//! and a dead one look the same. An [`InstanceLiveness`] can tell them apart where the engine
//! cannot; with one configured, a lease whose holder it says is gone is released and taken
//! at once. Its fencing token is still raised, so a holder wrongly said gone has every late
//! write refused, never applied twice.
//!
//! [`LocalProcesses`] tells for processes of the same host: its instance ids name the
//! process (boot, pid and start time), and a holder of this host and boot whose process no
//! longer runs is gone. It reads `/proc` (Linux); elsewhere it never says gone.
//!
//! [`EngineConfig::instance_id`]: crate::EngineConfig::instance_id
//! [`EngineConfig::lease_duration`]: crate::EngineConfig::lease_duration

use std::fmt;

/// Says whether another engine instance, by its id, is known to be gone.
///
/// Only a certain answer may be `true`: "cannot tell" is `false`, and the lease is then
/// waited out as without a liveness check.
pub trait InstanceLiveness: Send + Sync + fmt::Debug {
    /// Whether the instance `instance_id` is known to run no longer.
    fn is_gone(&self, instance_id: &str) -> bool;
}

/// The processes of this host: ids of the form `<prefix>@<boot id>/<pid>/<start time>`
/// ([`LocalProcesses::instance_id`]), and a holder is gone when it names this host's
/// current boot and its process is not running (no such pid, or one started at another
/// time: the pid was reused).
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalProcesses;

impl LocalProcesses {
    /// An instance id for this process, `<prefix>@<boot id>/<pid>/<start time>`; on a
    /// system without `/proc`, `<prefix>@<random uuid>` (never said gone).
    pub fn instance_id(prefix: &str) -> String {
        let pid = std::process::id();
        match (boot_id(), start_time(pid)) {
            (Some(boot), Some(start)) => format!("{prefix}@{boot}/{pid}/{start}"),
            _ => format!("{prefix}@{}", uuid::Uuid::new_v4()),
        }
    }
}

impl InstanceLiveness for LocalProcesses {
    fn is_gone(&self, instance_id: &str) -> bool {
        let Some((_, process)) = instance_id.rsplit_once('@') else {
            return false;
        };
        let mut parts = process.split('/');
        let (Some(boot), Some(pid), Some(start), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
            return false;
        };
        // Another host, or this host before a reboot: cannot tell.
        if boot_id().as_deref() != Some(boot) {
            return false;
        }
        start_time(pid) != Some(start)
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && !id.contains(['/', '@'])).then(|| id.to_owned())
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_gone() {
        let id = LocalProcesses::instance_id("test");
        if boot_id().is_none() {
            // No /proc here: ids are random and nothing is ever said gone.
            assert!(!LocalProcesses.is_gone(&id));
            return;
        }
        assert!(!LocalProcesses.is_gone(&id), "{id}");
        // A child that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        let boot = boot_id().unwrap();
        let gone = format!("test@{boot}/{pid}/{}", start.unwrap_or(1));
        assert!(LocalProcesses.is_gone(&gone), "{gone}");
        // Same pid, another start time: a reused pid, the holder is gone.
        let me = std::process::id();
        let reused = format!("test@{boot}/{me}/{}", start_time(me).unwrap() + 1);
        assert!(LocalProcesses.is_gone(&reused));
        // Another boot (or host), or an id of another form: cannot tell.
        let other_boot = format!("test@00000000-0000-0000-0000-000000000000/{pid}/1");
        assert!(!LocalProcesses.is_gone(&other_boot));
        for id in [
            "",
            "plain-uuid",
            "x@y",
            "x@boot/1",
            "x@boot/a/b",
            "x@boot/1/2/3",
        ] {
            assert!(!LocalProcesses.is_gone(id), "{id}");
        }
    }
}
