//! Telling whether the instance that holds a lease is gone, so its leases are taken over at
//! once instead of waited out.
//!
//! A lease names its holder by [`EngineConfig::instance_id`]. When an instance dies (a crash,
//! `kill -9`, a power cut), its leases stay until they expire ([`EngineConfig::lease_duration`],
//! 2 minutes by default): the next instance waits, because from the store alone a slow holder
//! and a dead one look the same. An [`InstanceLiveness`] can tell them apart where the engine
//! cannot; with one configured, a lease whose holder it says is gone is released and taken
//! at once. Its fencing token is still raised, so a holder wrongly said gone has every late
//! write to the store refused; it may still send Apple a request until it next renews its
//! lease, which is why only a certain answer may say gone.
//!
//! [`LocalProcesses`] tells for processes of the same host, PID namespace and user: its
//! instance ids name the process (boot, PID namespace, user, pid and start time), and such a
//! holder whose process no longer runs is gone. It reads `/proc` (Linux); elsewhere, and
//! for anything it cannot read, it never says gone.
//!
//! [`EngineConfig::instance_id`]: crate::EngineConfig::instance_id
//! [`EngineConfig::lease_duration`]: crate::EngineConfig::lease_duration

use std::fmt;
use std::io::ErrorKind;

use async_trait::async_trait;

/// Says whether another engine instance, by its id, is known to be gone.
///
/// Only a certain answer may be `true`: "cannot tell" is `false`, and the lease is then
/// waited out as without a liveness check. Called on the async runtime when a lock finds a
/// location held, so an implementation that asks a service awaits it rather than block.
#[async_trait]
pub trait InstanceLiveness: Send + Sync + fmt::Debug {
    /// Whether the instance `instance_id` is known to run no longer.
    async fn is_gone(&self, instance_id: &str) -> bool;
}

/// The processes of this host: ids of the form
/// `<prefix>#<nonce>@<boot id>/<pid namespace>/<uid>/<pid>/<start time>`
/// ([`LocalProcesses::instance_id`]), and a holder is gone when it names this boot, this
/// PID namespace and this user, and its process is certainly not running (no such pid, or
/// one started at another time: the pid was reused). Anything else (another host, another
/// container, another user whose processes may be hidden, a `/proc` that cannot be read)
/// cannot be told, and is waited out.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalProcesses;

impl LocalProcesses {
    /// A new instance id for an engine of this process (each call gives another, so two
    /// engines of one process never share leases); on a system without `/proc`,
    /// `<prefix>#<nonce>` (never said gone).
    pub fn instance_id(prefix: &str) -> String {
        let nonce = uuid::Uuid::new_v4().simple();
        match Me::read() {
            Some(me) => format!(
                "{prefix}#{nonce}@{}/{}/{}/{}/{}",
                me.boot, me.pid_ns, me.uid, me.pid, me.start
            ),
            None => format!("{prefix}#{nonce}"),
        }
    }
}

#[async_trait]
impl InstanceLiveness for LocalProcesses {
    async fn is_gone(&self, instance_id: &str) -> bool {
        let Some((_, process)) = instance_id.rsplit_once('@') else {
            return false;
        };
        let parts: Vec<&str> = process.split('/').collect();
        let [boot, pid_ns, uid, pid, start] = parts[..] else {
            return false;
        };
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
            return false;
        };
        let Some(me) = Me::read() else {
            return false;
        };
        if (boot, pid_ns, uid) != (me.boot.as_str(), me.pid_ns.as_str(), me.uid.as_str()) {
            return false;
        }
        match start_time(pid) {
            Ok(Some(now_started)) => now_started != start,
            // No such process in this namespace.
            Err(e) if e.kind() == ErrorKind::NotFound => true,
            // Unreadable or unparsable: cannot tell.
            _ => false,
        }
    }
}

/// What names this process: boot, PID namespace, user, pid and start time.
struct Me {
    boot: String,
    pid_ns: String,
    uid: String,
    pid: u32,
    start: u64,
}

impl Me {
    fn read() -> Option<Self> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let pid_ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))?
            .split_whitespace()
            .next()?
            .to_owned();
        let pid = std::process::id();
        let start = start_time(pid).ok()??;
        let word = |s: &str| {
            let s = s.trim();
            (!s.is_empty() && !s.contains(['/', '@', '#'])).then(|| s.to_owned())
        };
        // `pid:[4026531836]` -> `4026531836`.
        let pid_ns = pid_ns.to_string_lossy();
        let pid_ns = pid_ns.trim_start_matches("pid:[").trim_end_matches(']');
        Some(Self {
            boot: word(&boot)?,
            pid_ns: word(pid_ns)?,
            uid: word(&uid)?,
            pid,
            start,
        })
    }
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`):
/// `Ok(None)` when the file reads but does not parse.
fn start_time(pid: u32) -> std::io::Result<Option<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    Ok(stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().nth(19)?.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me_or_skip() -> Option<Me> {
        let me = Me::read();
        if me.is_none() {
            // No /proc here: ids carry no process, and nothing is ever said gone.
            let id = LocalProcesses::instance_id("test");
            assert!(!id.contains('@'), "{id}");
        }
        me
    }

    #[tokio::test]
    async fn this_process_is_alive_and_a_finished_one_is_gone() {
        let Some(me) = me_or_skip() else { return };
        let id = LocalProcesses::instance_id("test");
        assert!(!LocalProcesses.is_gone(&id).await, "{id}");
        assert_ne!(id, LocalProcesses::instance_id("test"), "one id per engine");
        let ours = |pid: u32, start: u64| {
            format!("test#n@{}/{}/{}/{pid}/{start}", me.boot, me.pid_ns, me.uid)
        };
        // A child that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(LocalProcesses.is_gone(&ours(pid, 1)).await);
        // Same pid, another start time: a reused pid, the holder is gone.
        let reused = ours(me.pid, me.start + 1);
        assert!(LocalProcesses.is_gone(&reused).await, "{reused}");
        assert!(!LocalProcesses.is_gone(&ours(me.pid, me.start)).await);
    }

    /// Another boot or host, another PID namespace (a container), another user, or an id
    /// of another form: cannot tell, never gone.
    #[tokio::test]
    async fn what_cannot_be_told_is_not_gone() {
        let Some(me) = me_or_skip() else { return };
        let pid = u32::MAX - 1; // above any pid_max: no such process here
        for id in [
            format!(
                "t#n@00000000-0000-0000-0000-000000000000/{}/{}/{pid}/1",
                me.pid_ns, me.uid
            ),
            format!("t#n@{}/4026530000/{}/{pid}/1", me.boot, me.uid),
            format!("t#n@{}/{}/{}/{pid}/1", me.boot, me.pid_ns, u32::MAX),
            "".to_owned(),
            "plain-uuid".to_owned(),
            "x@y".to_owned(),
            format!("x@{}/{}/{}/{pid}", me.boot, me.pid_ns, me.uid),
            format!("x@{}/{}/{}/a/b", me.boot, me.pid_ns, me.uid),
        ] {
            assert!(!LocalProcesses.is_gone(&id).await, "{id}");
        }
        let gone = format!("t#n@{}/{}/{}/{pid}/1", me.boot, me.pid_ns, me.uid);
        assert!(LocalProcesses.is_gone(&gone).await, "{gone}");
    }
}
