fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=proto/novalog.proto");
    prost_build::Config::new()
        .btree_map(["."])
        .compile_protos(&["proto/novalog.proto"], &["proto"])
}
