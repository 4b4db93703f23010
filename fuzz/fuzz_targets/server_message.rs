#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loadtest::fuzzing::server_message(data);
});
