//! The listen-in page: server name, who is playing (unless hidden), a play button for the stream,
//! the listener count and a link to the privacy policy. Self-contained: no third-party resource, no
//! cookie, no storage; a few lines of inline script refresh the count from `/status.json`.

use tutti_jam::chat::escape_html;

pub(crate) fn render(server_name: &str, musicians: Option<&[String]>, listeners: u32) -> String {
    let title = if server_name.is_empty() { "tutti jam".to_string() } else { escape_html(server_name) };
    let playing = match musicians {
        None => String::new(),
        Some([]) => "<p id=\"who\">Nobody is playing right now.</p>".to_string(),
        Some(names) => {
            let names: Vec<String> =
                names.iter().map(|n| if n.is_empty() { "(no name)".to_string() } else { escape_html(n) }).collect();
            format!("<p id=\"who\">Playing: {}</p>", names.join(", "))
        }
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — listen in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;line-height:1.5}}
button{{font-size:1.4em;padding:.4em 1.4em}}</style></head>
<body><h1>{title}</h1>
{playing}
<p><button id="play" type="button">▶ Listen</button></p>
<audio id="stream" preload="none" src="/stream.opus"></audio>
<p><span id="listeners">{listeners}</span> listening. Listeners are anonymous: the musicians only learn how many you are.</p>
<p><a href="/privacy">Privacy policy</a> · <a href="/stream.opus">Stream</a> for any player (Ogg Opus)</p>
<script>
const a = document.getElementById('stream'), b = document.getElementById('play');
b.onclick = () => {{ if (a.paused) {{ a.src = '/stream.opus'; a.play(); b.textContent = '■ Stop'; }}
  else {{ a.pause(); a.removeAttribute('src'); a.load(); b.textContent = '▶ Listen'; }} }};
setInterval(() => fetch('/status.json').then(r => r.json()).then(s => {{
  document.getElementById('listeners').textContent = s.listeners; }}).catch(() => {{}}), 10000);
</script></body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_can_be_hidden() {
        let page = render("Rock <b>Club</b>", Some(&["<i>Eve</i>".to_string(), String::new()]), 3);
        assert!(page.contains("Rock &lt;b&gt;Club&lt;/b&gt;"));
        assert!(page.contains("Playing: &lt;i&gt;Eve&lt;/i&gt;, (no name)"));
        assert!(page.contains(">3</span> listening"));
        let hidden = render("Club", None, 0);
        assert!(!hidden.contains("Playing") && !hidden.contains("Nobody"));
    }

    #[test]
    fn nothing_third_party() {
        let page = render("x", Some(&[]), 0);
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"));
        assert!(!page.to_lowercase().contains("cookie") && !page.contains("localStorage"));
    }
}
