//! GNU build ids, to tell whether a binary on disk is the one the crashed
//! process had mapped: from the file's bytes, and from the copy of its first
//! page the kernel keeps in a core (its ELF headers and, usually, the
//! `.note.gnu.build-id` right after them).

use super::CoreMemory;
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD, PT_NOTE};
use goblin::elf::Elf;

const NT_GNU_BUILD_ID: u32 = 3;
/// Most program headers and note bytes looked at.
const MAX_HEADERS: usize = 256;
const MAX_NOTE_BYTES: u64 = 64 * 1024;

/// The build id of an ELF file, from its bytes.
pub fn of_file(data: &[u8]) -> Option<Vec<u8>> {
    let headers = program_headers(data.get(..64)?, |at, len| {
        data.get(at as usize..(at as usize).checked_add(len)?)
            .map(<[u8]>::to_vec)
    })?;
    headers
        .iter()
        .filter(|p| p.p_type == PT_NOTE)
        .find_map(|p| {
            let at = p.p_offset as usize;
            let bytes = data.get(at..at.checked_add(p.p_filesz.min(MAX_NOTE_BYTES) as usize)?)?;
            find_in_notes(bytes)
        })
}

/// The build id of the ELF file mapped at `base`, from the core's own
/// copy of its headers (None when the core did not keep them).
pub fn in_core(memory: &CoreMemory, base: u64) -> Option<Vec<u8>> {
    let read = |at: u64, len: usize| {
        let mut buf = vec![0u8; len];
        memory
            .read_core_only(base.checked_add(at)?, &mut buf)
            .ok()?;
        Some(buf)
    };
    let headers = program_headers(&read(0, 64)?, read)?;
    let first_load = headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .map(|p| p.p_vaddr & !0xfff)
        .min()?;
    headers
        .iter()
        .filter(|p| p.p_type == PT_NOTE)
        .find_map(|p| {
            let bytes = read(
                p.p_vaddr.checked_sub(first_load)?,
                p.p_filesz.min(MAX_NOTE_BYTES) as usize,
            )?;
            find_in_notes(&bytes)
        })
}

/// The program headers of the 64-bit little-endian ELF whose first 64
/// bytes are `header`, the rest read through `read(offset, length)`.
fn program_headers(
    header: &[u8],
    read: impl Fn(u64, usize) -> Option<Vec<u8>>,
) -> Option<Vec<ProgramHeader>> {
    let header = Elf::parse_header(header).ok()?;
    let count = (header.e_phnum as usize).min(MAX_HEADERS);
    let bytes = read(header.e_phoff, count * 56)?;
    ProgramHeader::parse(&bytes, 0, count, Ctx::new(Container::Big, Endian::Little)).ok()
}

fn find_in_notes(bytes: &[u8]) -> Option<Vec<u8>> {
    super::notes::parse(bytes)
        .into_iter()
        .find(|n| n.kind == NT_GNU_BUILD_ID && n.name == b"GNU")
        .map(|n| n.desc.to_vec())
}

/// A build id as hex, as `file` and `readelf -n` print it.
pub fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
