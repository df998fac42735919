//! The notes of a Linux core file (`PT_NOTE` segments): threads and their
//! registers, the process's name and arguments, the signal that ended it,
//! the auxiliary vector and the file mappings. Layouts are x86-64 Linux's
//! (`struct elf_prstatus`, `elf_prpsinfo`, `siginfo_t`, the `NT_FILE` table).

use crate::memory::word_at;

pub const NT_PRSTATUS: u32 = 1;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_AUXV: u32 = 6;
pub const NT_SIGINFO: u32 = 0x5349_4749;
pub const NT_FILE: u32 = 0x4649_4c45;

/// Most notes read from one core (a thread has about six).
const MAX_NOTES: usize = 1 << 20;
/// Most `NT_FILE` entries accepted (Linux allows 65530 mappings by default).
const MAX_FILE_ENTRIES: u64 = 1 << 20;

/// `struct elf_prstatus` on x86-64: where the fields pysampler uses are.
const PRSTATUS_CURSIG: usize = 12;
const PRSTATUS_PID: usize = 32;
const PRSTATUS_REGS: usize = 112;
/// `struct user_regs_struct`: 27 registers of 8 bytes.
const REGS_BYTES: usize = 27 * 8;

/// One note: its type, owner name and contents.
pub struct Note<'a> {
    pub kind: u32,
    pub name: &'a [u8],
    pub desc: &'a [u8],
}

/// The notes packed in one `PT_NOTE` segment's bytes; stops at the first
/// malformed one (a truncated core cuts its notes short).
pub fn parse(bytes: &[u8]) -> Vec<Note<'_>> {
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut notes = Vec::new();
    let mut at = 0usize;
    while notes.len() < MAX_NOTES {
        let (Some(namesz), Some(descsz), Some(kind)) = (u32_at(at), u32_at(at + 4), u32_at(at + 8))
        else {
            break;
        };
        let name_at = at + 12;
        let desc_at = name_at + align4(namesz as usize);
        let end = desc_at + align4(descsz as usize);
        let (Some(name), Some(desc)) = (
            bytes.get(name_at..name_at + namesz as usize),
            bytes.get(desc_at..desc_at + descsz as usize),
        ) else {
            break;
        };
        // The name is NUL-terminated ("CORE\0").
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        notes.push(Note { kind, name, desc });
        at = end;
    }
    notes
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// One thread of the core (`NT_PRSTATUS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreThread {
    pub tid: i32,
    /// The signal the thread was handling when the core was written (0: none).
    pub signal: u32,
    /// Its general registers (`user_regs_struct`), kept for native unwinding.
    pub registers: Vec<u64>,
}

pub fn prstatus(desc: &[u8]) -> Option<CoreThread> {
    let regs = desc.get(PRSTATUS_REGS..PRSTATUS_REGS + REGS_BYTES)?;
    Some(CoreThread {
        tid: i32_at(desc, PRSTATUS_PID)?,
        signal: u16::from_le_bytes(
            desc.get(PRSTATUS_CURSIG..PRSTATUS_CURSIG + 2)?
                .try_into()
                .ok()?,
        ) as u32,
        registers: (0..27).map(|i| word_at(regs, i * 8)).collect(),
    })
}

/// `NT_PRPSINFO`: pid, the executable's short name and the first 80 bytes
/// of the command line (arguments separated by spaces).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub name: String,
    pub args: String,
}

pub fn prpsinfo(desc: &[u8]) -> Option<ProcessInfo> {
    Some(ProcessInfo {
        pid: i32_at(desc, 24)?,
        name: c_string(desc.get(40..56)?),
        args: c_string(desc.get(56..136)?).trim_end().to_string(),
    })
}

/// `NT_SIGINFO`: the signal that ended the process, and the faulting
/// address for the signals that have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    pub signal: u32,
    pub code: i32,
    /// `si_addr`, for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP.
    pub fault_address: Option<u64>,
}

pub fn siginfo(desc: &[u8]) -> Option<SignalInfo> {
    let signal = i32_at(desc, 0)? as u32;
    let code = i32_at(desc, 8)?;
    let has_address = matches!(signal, 4 | 5 | 7 | 8 | 11);
    Some(SignalInfo {
        signal,
        code,
        fault_address: has_address.then(|| word_at(desc, 16)),
    })
}

/// One line of the `NT_FILE` table: a file mapped at `start..end`,
/// starting at byte `offset` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

pub fn file_mappings(desc: &[u8]) -> Vec<FileMapping> {
    let count = word_at(desc, 0);
    let page_size = word_at(desc, 8);
    if count > MAX_FILE_ENTRIES || count.saturating_mul(24).saturating_add(16) > desc.len() as u64 {
        return Vec::new();
    }
    let names_at = 16 + count as usize * 24;
    let mut names = desc[names_at..].split(|b| *b == 0);
    (0..count as usize)
        .map_while(|i| {
            let at = 16 + i as u64 * 24;
            Some(FileMapping {
                start: word_at(desc, at),
                end: word_at(desc, at + 8),
                offset: word_at(desc, at + 16).checked_mul(page_size)?,
                path: String::from_utf8_lossy(names.next()?).into_owned(),
            })
        })
        .filter(|m| m.end > m.start)
        .collect()
}

/// `NT_AUXV`: (type, value) pairs up to `AT_NULL`.
pub fn auxv(desc: &[u8]) -> Vec<(u64, u64)> {
    desc.chunks_exact(16)
        .map(|c| (word_at(c, 0), word_at(c, 8)))
        .take_while(|(kind, _)| *kind != 0)
        .collect()
}

fn i32_at(data: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(kind: u32, name: &[u8], desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((name.len() as u32 + 1).to_le_bytes());
        out.extend((desc.len() as u32).to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(name);
        out.push(0);
        out.resize(align4(out.len()), 0);
        out.extend(desc);
        out.resize(align4(out.len()), 0);
        out
    }

    #[test]
    fn notes_and_file_table() {
        let mut table = Vec::new();
        for w in [2u64, 4096, 0x1000, 0x3000, 0, 0x5000, 0x6000, 2] {
            table.extend(w.to_le_bytes());
        }
        table.extend(b"/bin/a\0/lib/b\0");
        let mut bytes = note(NT_FILE, b"CORE", &table);
        bytes.extend(note(
            NT_AUXV,
            b"CORE",
            &[31, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0],
        ));
        bytes.extend([1, 2, 3]);
        let notes = parse(&bytes);
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].name, b"CORE");
        let files = file_mappings(notes[0].desc);
        assert_eq!(files[1].offset, 2 * 4096);
        assert_eq!(files[1].path, "/lib/b");
        assert_eq!(auxv(notes[1].desc), vec![(31, 9)]);
        for cut in 0..bytes.len() {
            let notes = parse(&bytes[..cut]);
            if let Some(n) = notes.first() {
                let _ = file_mappings(n.desc);
            }
        }
    }
}
