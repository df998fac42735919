//! pysampler's integration tests: one binary, real interpreters.

mod asyncio;
mod asyncio_record;
mod bad_input;
mod columns;
mod core_fixtures;
mod corefile;
mod dump;
mod dump_tree;
mod exit_status;
mod formats;
mod free_threaded;
mod install;
mod locals_long;
mod offsets;
mod pprof;
mod pyroscope;
mod pythons;
mod record;
mod recordings;
mod recordings_bad;
mod reliability;
mod security;
mod snapshot;
mod speedscope_names;
mod target;
mod top;
mod top_launch;
mod web;

macro_rules! dump_tests {
    ($($name:ident => $label:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                dump::check($label);
            }
        )*
    };
}

dump_tests! {
    dump_python_2_7 => "2.7",
    dump_python_3_6 => "3.6",
    dump_python_3_7 => "3.7",
    dump_python_3_8 => "3.8",
    dump_python_3_9 => "3.9",
    dump_python_3_10 => "3.10",
    dump_python_3_11 => "3.11",
    dump_python_3_12 => "3.12",
    dump_python_3_13 => "3.13",
    dump_debian_python_3_11 => "debian-3.11",
    dump_python_3_14_in_sid_root => "3.14",
    dump_python_3_15_in_sid_root => "3.15",
    dump_python_3_13t_free_threaded => "3.13t",
    dump_venv_python => "venv-3.12",
    dump_symlinked_python => "symlink-3.9",
}

macro_rules! asyncio_tests {
    ($($name:ident => $label:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                asyncio::check($label);
            }
        )*
    };
}

asyncio_tests! {
    dump_async_python_3_8 => "3.8",
    dump_async_python_3_9 => "3.9",
    dump_async_python_3_10 => "3.10",
    dump_async_python_3_11 => "3.11",
    dump_async_python_3_12 => "3.12",
    dump_async_python_3_13 => "3.13",
    dump_async_python_3_14_in_sid_root => "3.14",
    dump_async_python_3_15_in_sid_root => "3.15",
}

macro_rules! locals_long_tests {
    ($($name:ident => $label:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                locals_long::check($label);
            }
        )*
    };
}

macro_rules! asyncio_record_tests {
    ($($name:ident => $label:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                asyncio_record::check($label);
            }
        )*
    };
}

locals_long_tests! {
    dump_ll_python_2_7 => "2.7",
    dump_ll_python_3_6 => "3.6",
    dump_ll_python_3_7 => "3.7",
    dump_ll_python_3_8 => "3.8",
    dump_ll_python_3_9 => "3.9",
    dump_ll_python_3_10 => "3.10",
    dump_ll_python_3_11 => "3.11",
    dump_ll_python_3_12 => "3.12",
    dump_ll_python_3_13 => "3.13",
    dump_ll_python_3_14_in_sid_root => "3.14",
    dump_ll_python_3_15_in_sid_root => "3.15",
    dump_ll_python_3_13t_free_threaded => "3.13t",
}

macro_rules! column_tests {
    ($($name:ident => $label:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                columns::check($label);
            }
        )*
    };
}

column_tests! {
    columns_python_3_11 => "3.11",
    columns_python_3_12 => "3.12",
    columns_python_3_13 => "3.13",
    columns_python_3_14_in_sid_root => "3.14",
    columns_python_3_15_in_sid_root => "3.15",
    columns_python_3_13t_free_threaded => "3.13t",
}

#[test]
fn no_columns_before_3_11() {
    for label in ["2.7", "3.9", "3.10"] {
        columns::check_absent(label);
    }
}

// Frame objects (3.9, 3.10), embedded frames (3.11, 3.12), `.AsyncioDebug` (3.14).
asyncio_record_tests! {
    record_async_python_3_9 => "3.9",
    record_async_python_3_10 => "3.10",
    record_async_python_3_11 => "3.11",
    record_async_python_3_12 => "3.12",
    record_async_python_3_14_in_sid_root => "3.14",
}

#[test]
fn record_async_under_uvloop() {
    asyncio_record::check_uvloop();
}

macro_rules! core_fixture_tests {
    ($($name:ident => $label:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                core_fixtures::live_dump_agrees($label);
            }
        )*
    };
}

// The core crate's committed snapshot of each interpreter against a live dump.
core_fixture_tests! {
    core_fixture_matches_live_2_7 => "2.7",
    core_fixture_matches_live_3_6 => "3.6",
    core_fixture_matches_live_3_7 => "3.7",
    core_fixture_matches_live_3_8 => "3.8",
    core_fixture_matches_live_3_9 => "3.9",
    core_fixture_matches_live_3_10 => "3.10",
    core_fixture_matches_live_3_11 => "3.11",
    core_fixture_matches_live_3_12 => "3.12",
    core_fixture_matches_live_3_13 => "3.13",
    core_fixture_matches_live_debian_3_11 => "debian-3.11",
    core_fixture_matches_live_3_14 => "3.14",
    core_fixture_matches_live_3_15 => "3.15",
    core_fixture_matches_live_3_13t => "3.13t",
}

#[test]
fn every_listed_interpreter_is_tested() {
    for label in pythons::ALL_LABELS {
        pythons::find(label);
    }
    for extra in pythons::extra_pythons() {
        dump::check_extra(&extra);
    }
}

macro_rules! corefile_tests {
    ($($name:ident => $label:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                corefile::gcore_agrees($label);
            }
        )*
    };
}

corefile_tests! {
    dump_core_gcore_python_2_7 => "2.7",
    dump_core_gcore_python_3_9 => "3.9",
    dump_core_gcore_python_3_12 => "3.12",
    dump_core_gcore_python_3_13 => "3.13",
    dump_core_gcore_debian_python_3_11 => "debian-3.11",
}

// 3.14 and 3.15 (sid root) are read from kernel cores: their glibc guards
// thread stacks with MADV_GUARD_INSTALL, and Debian 12's gdb 13 then writes
// the threads' stacks as zeros ("Memory read failed for corefile section").
macro_rules! kernel_core_tests {
    ($($name:ident => $label:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                corefile::kernel_core($label);
            }
        )*
    };
}

kernel_core_tests! {
    dump_core_of_a_segfault_python_2_7 => "2.7",
    dump_core_of_a_segfault_python_3_12 => "3.12",
    dump_core_of_a_segfault_python_3_14_in_sid_root => "3.14",
    dump_core_of_a_segfault_python_3_15_in_sid_root => "3.15",
}

#[test]
fn dump_core_async_python_3_12() {
    corefile::async_agrees("3.12");
}

#[test]
fn dump_core_async_python_3_13() {
    corefile::async_agrees("3.13");
}
