//! Finding a process's descendants (for `--subprocesses`): one scan of /proc,
//! done a few times a second by the recorder, never per sample.

use std::collections::HashMap;

/// Most processes considered in one scan.
const MAX_PROCESSES: usize = 1 << 20;

/// Children, grandchildren, … of `root` (not `root` itself), parents first.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    for entry in dir.flatten().take(MAX_PROCESSES) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        if let Some(kids) = children.get(&pid) {
            for &kid in kids {
                if kid != root && !found.contains(&kid) {
                    found.push(kid);
                    queue.push(kid);
                }
            }
        }
    }
    found
}

/// The parent pid from `/proc/PID/stat` (the field after the state).
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = crate::process::stat::read_process(pid)?;
    crate::process::stat::StatLine::parse(&stat)?.parent()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_grandchild() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo started; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let me = std::process::id() as i32;
        let found = descendants(me);
        assert!(found.contains(&(child.id() as i32)));
        assert!(found.len() >= 2, "{found:?}");
        assert_eq!(parent_of(child.id() as i32), Some(me));
        // Only this test's processes: `found` also holds the children of
        // tests running alongside in this process, which are theirs to end.
        let ours = descendants(child.id() as i32);
        let _ = child.kill();
        let _ = child.wait();
        for pid in ours {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
