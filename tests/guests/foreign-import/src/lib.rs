//! A component importing `wasi:http`, which the host must refuse to load.

// `generate_all`: wit-bindgen otherwise expects `wasi:*` bindings from
// another crate.
wit_bindgen::generate!({ path: "wit", world: "foreign", generate_all });

struct Foreign;

export!(Foreign);

impl Guest for Foreign {
    fn run(input: String) -> String {
        // Calling the import keeps it in the component.
        wasi::http::handler::handle(&input)
    }
}
