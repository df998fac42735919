//! Thread names as Python's `threading` module knows them: the registry
//! `threading._active` maps each thread's ident to its `Thread` object, whose
//! `_name` (2.7: `_Thread__name`) is the name.

use crate::walk::dict;
use crate::walk::objects::ObjectReader;
use crate::walk::threads::ThreadState;
use std::collections::HashMap;
use std::sync::Arc;

/// Names by thread ident; refreshed when a thread without a name appears.
#[derive(Default)]
pub struct ThreadNames {
    names: HashMap<u64, Arc<str>>,
    /// Idents looked up and not found, so a nameless thread is not looked up
    /// again on every sample.
    missing: Vec<u64>,
}

impl ThreadNames {
    pub fn get(&self, ident: u64) -> Option<Arc<str>> {
        self.names.get(&ident).cloned()
    }

    /// Reads the registry again if any of `threads` has no known name yet.
    pub fn refresh(&mut self, reader: &ObjectReader, interp: u64, threads: &[ThreadState]) {
        let unknown = threads
            .iter()
            .any(|t| !self.names.contains_key(&t.ident) && !self.missing.contains(&t.ident));
        if !unknown {
            return;
        }
        if let Ok(found) = read_registry(reader, interp) {
            self.names
                .extend(found.into_iter().map(|(k, v)| (k, Arc::from(v))));
        }
        for t in threads {
            if !self.names.contains_key(&t.ident) && !self.missing.contains(&t.ident) {
                self.missing.push(t.ident);
            }
        }
        // Bound the memory of programs that churn through threads.
        if self.missing.len() > 10_000 {
            self.missing.clear();
        }
        if self.names.len() > 10_000 {
            self.names.clear();
        }
    }
}

/// ident → name for every thread in `threading._active`.
fn read_registry(reader: &ObjectReader, interp: u64) -> crate::error::Result<HashMap<u64, String>> {
    let layout = &reader.interp.layout;
    let mut found = HashMap::new();
    let modules = reader.ptr(interp.wrapping_add(layout.interpreter.modules))?;
    if modules == 0 {
        return Ok(found);
    }
    let Some(threading) = dict::get_str(reader, modules, "threading")? else {
        return Ok(found);
    };
    let module_dict = reader.ptr(threading.wrapping_add(layout.module.dict))?;
    let Some(active) = dict::get_str(reader, module_dict, "_active")? else {
        return Ok(found);
    };
    let attr = reader.interp.families.language.thread_name_attribute();
    for (key, thread) in dict::items(reader, active)? {
        let ident = match reader.integer(key) {
            Ok(Some(v)) => v as u64,
            _ => continue,
        };
        if let Ok(Some(name)) = dict::instance_attribute(reader, thread, attr) {
            if let Ok(text) = reader.text(name) {
                found.insert(ident, text);
            }
        }
    }
    Ok(found)
}
