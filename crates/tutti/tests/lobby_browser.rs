//! The page in a real browser: Debian's Chromium (fake camera and microphone) driven by npm
//! `playwright-core` against `tutti lobby`: a lone page told that nobody was found yet once the wait
//! set by the server ran out (not before; gone when matched), two pages matched, text, typing, WebRTC connected with
//! decoded video, Esc (next) rematches with a third page, a denied camera is explained, no cookies,
//! no request leaves the origin. Screenshots go to `<target>/tmp/lobby-browser/`.

mod lobby_support;

use lobby_support::{node, Lobby};
use std::time::Duration;

#[test]
fn two_browsers_meet_talk_and_see_each_other() {
    let artifacts = lobby_support::browser_artifacts("lobby-browser");
    let lobby = Lobby::start(&["--no-partner-notice-after", "1"]);
    let (ok, output) = node("browser.mjs", &[&lobby.url(), artifacts.to_str().unwrap()], Duration::from_secs(120));
    assert!(
        ok && output.contains("browser ok"),
        "the browser test failed (screenshots in {}):\n{output}",
        artifacts.display()
    );
    assert!(artifacts.join("lobby-desktop.png").is_file() && artifacts.join("lobby-phone.png").is_file());
    eprintln!("screenshots: {}", artifacts.display());
    lobby.wait_stats(serde_json::json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(10));
}
