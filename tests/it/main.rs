//! pysampler's integration tests: one binary, real interpreters.

mod bad_input;
mod dump;
mod formats;
mod install;
mod offsets;
mod pythons;
mod record;
mod recordings;
mod recordings_bad;
mod reliability;
mod security;
mod snapshot;
mod target;
mod top;
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
    dump_venv_python => "venv-3.12",
    dump_symlinked_python => "symlink-3.9",
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
