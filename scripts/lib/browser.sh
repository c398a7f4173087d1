# browser.sh — the web UI's browser tests (services/gateway/browser_test.go) drive Debian's
# chromium with chromedp. browser_install installs it when missing (idempotent: apt_install
# skips installed packages). Sourced by scripts/test after common.sh.

# POLYSHOP_CHROMIUM is where the tests look for the browser.
export POLYSHOP_CHROMIUM="${POLYSHOP_CHROMIUM:-/usr/bin/chromium}"

browser_install() {
	if [ -x "$POLYSHOP_CHROMIUM" ]; then
		return 0
	fi
	apt_install chromium
}
