//! CPU time read from `/proc`, which the load generator sharing the cores
//! cannot distort: the serving process's own, and PostgreSQL's.

use std::collections::HashMap;
use std::time::Duration;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, fixed at 100
/// in Linux's user-space ABI).
const TICKS_PER_SECOND: u64 = 100;

/// The fields of `/proc/<pid>/stat` a bench needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcStat {
    comm: String,
    parent: u32,
    /// utime + stime of every thread, in ticks.
    own_ticks: u64,
    /// cutime + cstime: what reaped children used, in ticks.
    children_ticks: u64,
}

/// Parses one `/proc/<pid>/stat` line. The command name sits in
/// parentheses and may hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_stat(line: &str) -> Option<ProcStat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    let number = |index: usize| fields.get(index)?.parse::<u64>().ok();
    Some(ProcStat {
        comm,
        parent: u32::try_from(number(1)?).ok()?,
        own_ticks: number(11)? + number(12)?,
        children_ticks: number(13)? + number(14)?,
    })
}

fn ticks(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// CPU time process `pid` has used so far, all threads together.
pub(crate) fn process(pid: u32) -> Option<Duration> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&line).map(|stat| ticks(stat.own_ticks))
}

/// CPU time PostgreSQL's processes on this machine have used so far,
/// including backends that have exited (their time is added to the
/// postmaster's children's time when it reaps them). `None` when no
/// PostgreSQL process is visible here.
pub(crate) fn postgres() -> Option<Duration> {
    let mut stats = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|line| parse_stat(&line))
        {
            stats.insert(pid, stat);
        }
    }
    postgres_ticks(&stats).map(ticks)
}

/// The ticks of every `postgres` process, plus the reaped children of each
/// postmaster (a `postgres` whose parent is not one).
fn postgres_ticks(stats: &HashMap<u32, ProcStat>) -> Option<u64> {
    let is_postgres = |pid: &u32| stats.get(pid).is_some_and(|stat| stat.comm == "postgres");
    let mut total = None;
    for stat in stats.values().filter(|stat| stat.comm == "postgres") {
        let mut used = stat.own_ticks;
        if !is_postgres(&stat.parent) {
            used += stat.children_ticks;
        }
        total = Some(total.unwrap_or(0) + used);
    }
    total
}

/// CPU used between two readings, per operation, in microseconds.
pub(crate) fn per_operation_us(
    before: Option<Duration>,
    after: Option<Duration>,
    operations: u64,
) -> Option<f64> {
    let used = after?.checked_sub(before?)?;
    (operations > 0).then(|| used.as_secs_f64() * 1e6 / operations as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTMASTER: &str = "812 (postgres) S 1 812 812 0 -1 4194560 9000 80000 0 0 150 90 4000 2500 20 0 1 0 500 230000000 9000";
    const BACKEND: &str = "9001 (postgres) S 812 812 812 0 -1 4194624 300 0 0 0 70 30 0 0 20 0 1 0 900 231000000 3000";

    #[test]
    fn a_stat_line_yields_name_parent_and_ticks() {
        let stat = parse_stat(POSTMASTER).unwrap();
        assert_eq!(stat.comm, "postgres");
        assert_eq!(stat.parent, 1);
        assert_eq!(stat.own_ticks, 240);
        assert_eq!(stat.children_ticks, 6500);
    }

    #[test]
    fn a_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let line = "77 (tokio (x) 1) R 5 77 77 0 -1 0 0 0 0 0 12 3 0 0 20 0 8 0 1 1 1";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "tokio (x) 1");
        assert_eq!(stat.parent, 5);
        assert_eq!(stat.own_ticks, 15);
    }

    #[test]
    fn postgres_time_counts_backends_and_what_the_postmaster_reaped() {
        let mut stats = HashMap::new();
        stats.insert(812, parse_stat(POSTMASTER).unwrap());
        stats.insert(9001, parse_stat(BACKEND).unwrap());
        stats.insert(
            5,
            parse_stat("5 (fitflow) S 1 5 5 0 -1 0 0 0 0 0 999 999 0 0 20 0 8 0 1 1 1").unwrap(),
        );
        // 240 + 6,500 reaped by the postmaster, + 100 of the live backend.
        assert_eq!(postgres_ticks(&stats), Some(6_840));
    }

    #[test]
    fn per_operation_figures_need_both_readings_and_some_operations() {
        let before = Some(Duration::from_millis(1_000));
        let after = Some(Duration::from_millis(1_500));
        assert_eq!(per_operation_us(before, after, 5_000), Some(100.0));
        assert_eq!(per_operation_us(None, after, 5_000), None);
        assert_eq!(per_operation_us(before, after, 0), None);
    }
}
