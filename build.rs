fn main() {
    // Only the Node binding needs napi's linker setup; the plain core builds without it.
    #[cfg(feature = "napi")]
    napi_build::setup();
}
