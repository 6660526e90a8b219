"""Draw smart-agent's icon (public/favicon.svg), its logos (public/logo_*.png) and login picture (login.svg).

The icon is a few lines of SVG written here; the logos (the icon beside the name) are that SVG and
text rendered by Debian's Chromium through Playwright, so they look the same on every machine.
Run `python tools/draw_brand.py` after changing anything below.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import sync_playwright

PUBLIC = Path(__file__).resolve().parent.parent / "smart_agent" / "web" / "app_root" / "public"
CHROMIUM = "/usr/bin/chromium"

# Lines of text streaming in, the last one still being written (its cursor): what the app does.
ICON = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <defs>
    <linearGradient id="sa" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#4f46e5"/>
      <stop offset="1" stop-color="#0ea5e9"/>
    </linearGradient>
  </defs>
  <rect width="64" height="64" rx="15" fill="url(#sa)"/>
  <rect x="13" y="17" width="38" height="6" rx="3" fill="#fff"/>
  <rect x="13" y="29" width="30" height="6" rx="3" fill="#fff" fill-opacity="0.85"/>
  <rect x="13" y="41" width="16" height="6" rx="3" fill="#fff" fill-opacity="0.7"/>
  <rect x="33" y="38" width="5" height="12" rx="2.5" fill="#fff"/>
</svg>
"""

# Chainlit 2.12 shows the logo 200 px wide above an empty chat and 150 px wide on the login page:
# drawn four times larger, it stays sharp on dense screens.
_LOGO_PAGE = """<!doctype html><html><head><style>
  html, body {{ margin: 0; background: transparent; }}
  #logo {{ display: inline-flex; align-items: center; gap: 34px; padding: 8px; }}
  #logo svg {{ width: 176px; height: 176px; }}
  #logo span {{ font: bold 128px "Liberation Sans", "DejaVu Sans", sans-serif; letter-spacing: -3px;
               color: {color}; line-height: 1; padding-bottom: 12px; }}
</style></head><body><div id="logo">{icon}<span>smart-agent</span></div></body></html>"""


def _login_art() -> str:
    """The login page's picture: a paragraph of text streaming in, on the icon's colours."""
    bar = '<rect x="250" y="{y}" width="{width}" height="30" rx="15" fill="#fff" fill-opacity="0.2"/>'
    widths = [620, 700, 540, 680, 460, 0, 640, 580, 700, 300]
    bars = [bar.format(y=270 + row * 72, width=width) for row, width in enumerate(widths) if width]
    bars.append('<rect x="570" y="900" width="14" height="46" rx="7" fill="#fff" fill-opacity="0.9"/>')
    lines = "\n  ".join(bars)
    return f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1200 1200"
     preserveAspectRatio="xMidYMid slice">
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#312e81"/>
      <stop offset="1" stop-color="#075985"/>
    </linearGradient>
  </defs>
  <rect width="1200" height="1200" fill="url(#bg)"/>
  {lines}
</svg>
"""


THEMES = {"light": "#111827", "dark": "#f9fafb"}
"""The name's colour on each of Chainlit's themes (the logo of `light` is shown on a light page)."""


def draw() -> None:
    """Write favicon.svg, login.svg, logo_light.png and logo_dark.png into the app root's public/ folder."""
    (PUBLIC / "favicon.svg").write_text(ICON)
    (PUBLIC / "login.svg").write_text(_login_art())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            for theme, color in THEMES.items():
                page.set_content(_LOGO_PAGE.format(color=color, icon=ICON))
                page.locator("#logo").screenshot(path=str(PUBLIC / f"logo_{theme}.png"), omit_background=True)
        finally:
            browser.close()


if __name__ == "__main__":
    draw()
