fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=proto/novalog.proto");
    println!("cargo:rerun-if-changed=proto/saga.proto");
    prost_build::Config::new()
        .btree_map(["."])
        .compile_protos(&["proto/novalog.proto", "proto/saga.proto"], &["proto"])
}
