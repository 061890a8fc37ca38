fn main() {
    luabundle::Builder::new().root("lua").entry("app.main").build();
}
