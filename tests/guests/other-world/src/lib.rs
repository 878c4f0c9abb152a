//! A component of another world, which the host must refuse to load.

wit_bindgen::generate!({ path: "wit", world: "thing" });

struct Other;

export!(Other);

impl Guest for Other {
    fn run(input: String) -> String {
        input
    }
}
