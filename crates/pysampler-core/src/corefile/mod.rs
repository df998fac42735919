//! Linux core files (written by the kernel when a process crashes, or by
//! gdb's `gcore`), parsed from their bytes: the memory as a `MemorySource`,
//! the threads, the signal that ended the process, its command line and the
//! files it mapped. The caller maps the core and the files (the pysampler
//! crate); reading a crashed process then goes through the same
//! `Interpreter::locate` and walker as a live one.

pub mod build_id;
mod command_line;
pub mod memory;
pub mod notes;
pub mod signals;

pub use memory::{CoreMemory, SharedBytes};
pub use notes::{CoreThread, FileMapping, SignalInfo};

use crate::maps::{MappedFile, Region};
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EM_X86_64, ET_CORE};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD, PT_NOTE};
use goblin::elf::Elf;

/// `AT_PHDR`: where the executable's program headers are mapped.
const AT_PHDR: u64 = 3;
/// `AT_EXECFN`: the path the program was started with, on its stack.
pub const AT_EXECFN: u64 = 31;
/// Most program headers accepted (a process has at most ~65530 mappings).
const MAX_SEGMENTS: usize = 1 << 20;

/// A parsed core file.
#[derive(Clone)]
pub struct CoreFile {
    pub pid: i32,
    /// The threads, in the core's order: the first is the one that received
    /// the signal (the kernel and gdb both write it first).
    pub threads: Vec<CoreThread>,
    pub process: notes::ProcessInfo,
    pub signal: Option<SignalInfo>,
    pub auxv: Vec<(u64, u64)>,
    /// The `NT_FILE` table: every file-backed mapping.
    pub files: Vec<FileMapping>,
    /// `PT_LOAD` segments the core's bytes do not hold in full (cut short).
    pub truncated_segments: usize,
    pub memory: CoreMemory,
}

impl CoreFile {
    /// Parses `bytes` (the whole core file, usually memory-mapped). The
    /// error says what is wrong, for a message naming the file.
    pub fn parse(bytes: SharedBytes) -> Result<CoreFile, String> {
        let data = (*bytes).as_ref();
        if data.get(..4) != Some(b"\x7fELF") {
            return Err("it is not an ELF file (a core file starts with \\x7fELF)".into());
        }
        let header = Elf::parse_header(data).map_err(|e| format!("bad ELF header: {e}"))?;
        if header.e_type != ET_CORE {
            return Err(format!(
                "it is an ELF file but not a core dump (ELF type {}: an executable or library?)",
                header.e_type
            ));
        }
        if header.e_machine != EM_X86_64 {
            return Err(format!(
                "it is a core of another architecture ({}); pysampler reads x86-64 cores",
                goblin::elf::header::machine_to_str(header.e_machine)
            ));
        }
        let ctx = Ctx::new(Container::Big, Endian::Little);
        if header.e_phnum as usize > MAX_SEGMENTS {
            return Err(format!("it claims {} segments", header.e_phnum));
        }
        let headers = ProgramHeader::parse(
            data,
            header.e_phoff as usize,
            header.e_phnum as usize,
            ctx,
        )
        .map_err(|e| {
            format!("its program headers are cut short or invalid ({e}): is the core truncated?")
        })?;
        let mut segments = Vec::new();
        let mut truncated_segments = 0;
        let mut core = CoreFile {
            pid: 0,
            threads: Vec::new(),
            process: notes::ProcessInfo::default(),
            signal: None,
            auxv: Vec::new(),
            files: Vec::new(),
            truncated_segments: 0,
            memory: CoreMemory::new(0, bytes.clone(), &[]),
        };
        for ph in &headers {
            let fits = ph
                .p_offset
                .checked_add(ph.p_filesz)
                .is_some_and(|end| end <= data.len() as u64);
            match ph.p_type {
                PT_LOAD => {
                    if !fits {
                        truncated_segments += 1;
                    }
                    segments.push((ph.p_vaddr, ph.p_filesz.min(ph.p_memsz), ph.p_offset));
                }
                PT_NOTE => {
                    let start = (ph.p_offset as usize).min(data.len());
                    let end = (ph.p_offset.saturating_add(ph.p_filesz) as usize).min(data.len());
                    core.read_notes(&data[start..end]);
                }
                _ => {}
            }
        }
        if core.threads.is_empty() {
            return Err(
                "it has no thread (no NT_PRSTATUS note): the core is truncated or damaged".into(),
            );
        }
        core.pid = match core.process.pid {
            0 => core.threads[0].tid,
            pid => pid,
        };
        core.truncated_segments = truncated_segments;
        core.memory = CoreMemory::new(core.pid, bytes, &segments);
        Ok(core)
    }

    fn read_notes(&mut self, bytes: &[u8]) {
        for note in notes::parse(bytes) {
            if note.name != b"CORE" {
                continue;
            }
            match note.kind {
                notes::NT_PRSTATUS => self.threads.extend(notes::prstatus(note.desc)),
                notes::NT_PRPSINFO => {
                    if let Some(p) = notes::prpsinfo(note.desc) {
                        self.process = p;
                    }
                }
                notes::NT_SIGINFO => self.signal = self.signal.or(notes::siginfo(note.desc)),
                notes::NT_AUXV => self.auxv = notes::auxv(note.desc),
                notes::NT_FILE => self.files = notes::file_mappings(note.desc),
                _ => {}
            }
        }
    }

    fn auxv_value(&self, kind: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
    }

    /// The executable's path: the file mapped where its program headers are.
    pub fn exe(&self) -> Option<&str> {
        let phdr = self.auxv_value(AT_PHDR)?;
        self.files
            .iter()
            .find(|f| f.start <= phdr && phdr < f.end)
            .map(|f| f.path.as_str())
    }

    /// The command line, arguments separated by spaces: read whole from the
    /// process's initial stack, or the 80-byte prefix the core records.
    pub fn command_line(&self) -> String {
        command_line::from_stack(self).unwrap_or_else(|| match self.process.args.is_empty() {
            true => self.process.name.clone(),
            false => self.process.args.clone(),
        })
    }

    /// The file mappings as regions, for `maps::mapped_files`.
    pub fn regions(&self) -> Vec<Region> {
        self.files
            .iter()
            .map(|f| Region {
                start: f.start,
                end: f.end,
                offset: f.offset,
                readable: true,
                path: Some(f.path.clone()),
            })
            .collect()
    }

    /// Files mapped from offset 0, as `Interpreter::locate` takes them.
    pub fn mapped_files(&self) -> Vec<MappedFile> {
        crate::maps::mapped_files(&self.regions())
    }

    /// The thread that received the fatal signal, when one ended the process.
    pub fn signalled_thread(&self) -> Option<i32> {
        let signal = self.signal?;
        signals::is_fatal_with_core(signal.signal).then(|| self.threads.first().map(|t| t.tid))?
    }
}
