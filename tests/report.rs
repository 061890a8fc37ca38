//! `luabundle inspect --format html`: the page as written (snapshot), and the page as a real
//! browser renders it (headless Chromium: its DOM shows the module names, its screenshot is
//! not blank). CI installs Debian's `chromium-headless-shell`; elsewhere the browser part
//! is skipped with a message unless `LUABUNDLE_REQUIRE_CHROMIUM=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{fixture, luabundle};

/// The host_app fixture (profiles, groups, externals) built into `dir`, and its report.
fn report(dir: &Path) -> (PathBuf, String) {
    let bundle = dir.join("host.bundle");
    luabundle()
        .current_dir(fixture("host_app"))
        .args(["build", "--no-cache", "-q", "-o"])
        .arg(&bundle)
        .assert()
        .code(0);
    let page = dir.join("report.html");
    luabundle().args(["inspect", "--format", "html", "-o"]).arg(&page).arg(&bundle).assert().code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    (page, html)
}

#[test]
fn the_html_report_is_one_self_contained_page() {
    let dir = tempfile::tempdir().unwrap();
    let (_, html) = report(dir.path());
    // Sizes and the target line depend on the Lua flavour: the snapshot is the default one's.
    #[cfg(feature = "lua54")]
    insta::assert_snapshot!("inspect_html_host_app", html);
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"), "self-contained");
    for name in ["app.util", "app.extra", "app.uses_native", "app.broken", "minimal"] {
        assert!(html.contains(name), "{name} missing");
    }
}

/// The first headless Chromium found on the path.
fn chromium() -> Option<&'static str> {
    ["chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|browser| Command::new(browser).arg("--version").output().is_ok_and(|o| o.status.success()))
}

fn headless(browser: &str) -> Command {
    let mut command = Command::new(browser);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--no-first-run",
        "--hide-scrollbars",
    ]);
    command
}

#[test]
fn a_real_browser_renders_the_report_with_the_module_names() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("LUABUNDLE_REQUIRE_CHROMIUM").is_none(),
            "LUABUNDLE_REQUIRE_CHROMIUM is set but no Chromium was found"
        );
        eprintln!("skipped: no headless Chromium (apt-get install chromium-headless-shell)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (page, _) = report(dir.path());
    let url = format!("file://{}", page.display());

    let dom = headless(browser).arg("--dump-dom").arg(&url).output().unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for text in ["luabundle report: host.bundle", "app.uses_native", "Dependency graph", "minimal"] {
        assert!(dom.contains(text), "the rendered page lacks {text:?}: {dom}");
    }
    assert!(dom.contains("<svg"), "the graph is drawn");

    let shot = dir.path().join("shot.png");
    let status = headless(browser)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1000,1400")
        .arg(&url)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), (1000, 1400));
    // Text, bars and the graph: many colours, and far from all white.
    let bytes = &pixels[..frame.buffer_size()];
    let step = frame.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> = bytes.chunks(step).collect();
    let ink = bytes.chunks(step).filter(|p| p.iter().take(3).any(|&c| c < 200)).count();
    assert!(colours.len() > 20, "{} colours: the page looks blank", colours.len());
    assert!(ink > 2_000, "{ink} dark pixels: the page looks blank");
}
