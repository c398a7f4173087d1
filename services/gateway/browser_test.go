package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"polyshop/shared/testenv"
)

// The web UI in a real browser: Debian's chromium driven by chromedp against a running
// platform (POLYSHOP_E2E=1, like the other end-to-end tests). scripts/test installs
// chromium when it is missing (scripts/lib/browser.sh). A failed step leaves a screenshot
// under .polyshop/browser-failures/. Every main page is checked with axe-core (vendored
// under testdata/axe-core, used by tests only): a serious or critical violation fails.

//go:embed testdata/axe-core/axe.min.js
var axeSource string

// chromiumFlags are the flags the browser tests run chromium with (a fresh user-data-dir
// is added per test).
var chromiumFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
	chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.WindowSize(1200, 900),
}

// browser is one chromium process; each tab from newTab is its own browser context
// (separate cookies), so a customer and an admin can be signed in side by side.
type browser struct {
	t     *testing.T
	c     e2e
	alloc context.Context
	root  context.Context
	shots string // failure screenshots
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	c := newE2E(t)
	path := os.Getenv("POLYSHOP_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		testenv.Require(t, "chromium", fmt.Errorf("%s: %w (scripts/test installs it: apt-get install chromium)", path, err))
	}
	opts := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir())}, chromiumFlags...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	if err := chromedp.Do(root); err != nil { // starts the browser
		cancelRoot()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancelRoot(); cancelAlloc() })
	repo, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: c, alloc: alloc, root: root, shots: filepath.Join(repo, ".polyshop", "browser-failures")}
}

// tab is one page in its own browser context.
type tab struct {
	b    *browser
	ctx  context.Context
	name string
}

func (b *browser) newTab(name string) *tab {
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	// The first run opens the tab and binds it to its context: never one with a timeout.
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open tab %s: %v", name, err)
	}
	return &tab{b: b, ctx: ctx, name: name}
}

// run runs actions within 45 s; on failure it saves a screenshot and fails the test.
func (tb *tab) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	t := tb.b.t
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		file := tb.screenshot(step)
		lctx, lcancel := context.WithTimeout(tb.ctx, 5*time.Second)
		url, _ := chromedp.Run(lctx, chromedp.Location())
		// A problem the UI showed (a 4xx/5xx from the API) says more than the timeout.
		alert, _ := chromedp.Run(lctx, chromedp.Evaluate[string](`[...document.querySelectorAll('[role=alert], #flash')].map(e => e.textContent).join(' | ')`))
		lcancel()
		t.Fatalf("%s: %s: %v (at %s; the page says %q; screenshot %s)", tb.name, step, err, url, alert, file)
	}
}

func (tb *tab) screenshot(step string) string {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return "none: " + err.Error()
	}
	_ = os.MkdirAll(tb.b.shots, 0o755)
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(tb.b.t.Name()+"-"+tb.name+"-"+step, "_") + ".png"
	file := filepath.Join(tb.b.shots, name)
	_ = os.WriteFile(file, png, 0o644)
	return file
}

func (tb *tab) open(hash string) chromedp.Action[chromedp.Void] {
	return chromedp.Navigate(tb.b.c.base + "/" + hash)
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// ignore drops an action's value, so it can be a step of tab.run.
func ignore[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// click clicks the first element matching sel once it exists, in the page itself, so a
// view re-rendered between finding and clicking (a stale node) is no problem.
func click(sel string) chromedp.Action[chromedp.Void] {
	return ignore(chromedp.Poll[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, sel),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second)))
}

// textContains waits until the element's text contains want.
func textContains(sel, want string) chromedp.Action[chromedp.Void] {
	return ignore(chromedp.Poll[bool](fmt.Sprintf(`(document.querySelector(%q)?.textContent || '').includes(%q)`, sel, want),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second)))
}

// axeViolation is one serious or critical finding of axe-core.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// accessible runs axe-core on the current page and fails on serious or critical
// violations.
func (tb *tab) accessible(page string) {
	tb.b.t.Helper()
	script := `axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations
		.filter(v => v.impact === 'serious' || v.impact === 'critical')
		.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))`
	tb.run("inject axe", ignore(chromedp.Evaluate[chromedp.Void](`typeof axe === 'undefined' ? (0, eval)(`+jsString(axeSource)+`) : 0`)))
	ctx, cancel := context.WithTimeout(tb.ctx, 45*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.b.t.Fatalf("axe on %s: %v", page, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		tb.b.t.Fatalf("axe answer on %s: %v: %s", page, err, out)
	}
	for _, v := range vs {
		tb.b.t.Errorf("accessibility (%s) on %s: %s [%s] at %v", v.Impact, page, v.Help, v.ID, v.Nodes)
	}
	if len(vs) > 0 {
		tb.screenshot("axe-" + page)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBrowserShopSagaAndLiveEvents: sign up, address, log out and in, search with a facet,
// order and watch the saga confirm live, see the order's events in the live view; then an
// admin declines payments through the fault switches and the next order cancels, its
// stock released (the compensation) — all through the UI.
func TestBrowserShopSagaAndLiveEvents(t *testing.T) {
	b := newBrowser(t)
	admin := b.c.admin()
	productID, word := b.c.product(admin, 1899, 50)
	b.c.searchInStock(word, productID, true)

	email := "ui-" + randomHex(t) + "@example.com"
	const password = "ui pass phrase 1"
	cust := b.newTab("customer")

	cust.run("sign up",
		cust.open("#/signup"),
		chromedp.WaitVisible(css(`form[aria-label="Sign up"] input[name=name]`)),
		chromedp.SendKeys(css(`form[aria-label="Sign up"] input[name=name]`), "UI Buyer"),
		chromedp.SendKeys(css(`form[aria-label="Sign up"] input[name=email]`), email),
		chromedp.SendKeys(css(`form[aria-label="Sign up"] input[name=password]`), password),
	)
	cust.accessible("sign up")
	cust.run("account after sign up",
		click(`form[aria-label="Sign up"] button[type=submit]`),
		textContains("main h1", "Account"),
		chromedp.SendKeys(css(`input[name=street]`), "1 Browser Lane"),
		chromedp.SendKeys(css(`input[name=city]`), "Lyon"),
		chromedp.SendKeys(css(`input[name=postalCode]`), "69001"),
		chromedp.SendKeys(css(`input[name=country]`), "FR"),
		click(`form[aria-label="Shipping address"] button[type=submit]`),
		textContains("#flash", "Address saved"),
	)
	cust.accessible("account")

	cust.run("a 4xx is explained: wrong password",
		click(`nav button`), // log out
		textContains("#flash", "logged out"),
		cust.open("#/login"),
		chromedp.WaitVisible(css(`form[aria-label="Log in"] input[name=email]`)),
		chromedp.SendKeys(css(`form[aria-label="Log in"] input[name=email]`), email),
		chromedp.SendKeys(css(`form[aria-label="Log in"] input[name=password]`), "wrong password"),
		click(`form[aria-label="Log in"] button[type=submit]`),
		chromedp.WaitVisible(css(`form[aria-label="Log in"] [role=alert]`)),
	)
	cust.run("log in",
		chromedp.SetValue(css(`form[aria-label="Log in"] input[name=password]`), password),
		click(`form[aria-label="Log in"] button[type=submit]`),
		textContains("nav", "Log out"),
		textContains("main h1", "Search"), // where the login lands
	)

	cust.run("search with a facet",
		cust.open("#/search?q="+word),
		chromedp.WaitVisible(css(`a[data-facet="kettle"]`)),
		click(`a[data-facet="kettle"]`),
		textContains("#hits-count", "in kettle"),
		chromedp.WaitVisible(css(`a[href="#/product/`+productID+`"]`)),
	)
	cust.accessible("search")
	cust.run("product and cart",
		chromedp.Click(css(`a[href="#/product/`+productID+`"]`)),
		textContains("#availability", "available"),
		click(`form[aria-label="Add to cart"] button[type=submit]`),
		textContains("#flash", "Added 1"),
	)
	cust.accessible("product")
	cust.run("checkout: the saga confirms live",
		cust.open("#/cart"),
		chromedp.WaitVisible(css(`form[aria-label="Checkout"] button`)),
		click(`form[aria-label="Checkout"] button`),
		chromedp.WaitVisible(css(`#order-status`)),
		textContains("#order-status", "CONFIRMED"),
		chromedp.WaitVisible(css(`#steps li[data-step="commit"].done`)),
		chromedp.WaitVisible(css(`#order-events li[data-type="orders.order_confirmed.v1"]`)),
		chromedp.WaitVisible(css(`#order-events li[data-type="payments.reply.charged.v1"]`)),
	)
	cust.accessible("order")
	cust.run("the live view shows the order's events",
		cust.open("#/live"),
		chromedp.WaitVisible(css(`#live-events li[data-type="orders.order_confirmed.v1"]`)),
		chromedp.WaitVisible(css(`#live-events li[data-type="inventory.stock_reserved.v1"]`)),
		click(`#live-events li[data-type="orders.order_confirmed.v1"] button.linkish`),
		chromedp.WaitVisible(css(`#chain-events li[data-type="orders.order_placed.v1"]`)),
		chromedp.WaitVisible(css(`#chain-events li[data-type="orders.order_confirmed.v1"]`)),
	)
	cust.accessible("live events")
	foreign, err := chromedp.Run(cust.ctx, chromedp.Evaluate[int](`[...document.querySelectorAll('#live-events li')].filter(li => /catalog|stock_changed/.test(li.dataset.type || '')).length`))
	if err != nil {
		t.Fatal(err)
	}
	if foreign != 0 {
		t.Errorf("a customer's live view shows %d shop-wide events", foreign)
	}

	// The admin declines every payment through the fault switches.
	adm := b.newTab("admin")
	t.Cleanup(func() { b.c.do("DELETE", "/api/admin/faults", admin, nil) })
	adm.run("admin logs in",
		adm.open("#/login"),
		chromedp.WaitVisible(css(`form[aria-label="Log in"] input[name=email]`)),
		chromedp.SendKeys(css(`form[aria-label="Log in"] input[name=email]`), testenv.Getenv("ADMIN_EMAIL")),
		chromedp.SendKeys(css(`form[aria-label="Log in"] input[name=password]`), testenv.Getenv("ADMIN_PASSWORD")),
		click(`form[aria-label="Log in"] button[type=submit]`),
		textContains("nav", "Console"),
		textContains("main h1", "Search"), // where the login lands
		adm.open("#/admin/faults"),
		chromedp.WaitVisible(css(`input[name="payments.declineRate"]`)),
		chromedp.SetValue(css(`input[name="payments.declineRate"]`), "1"),
		click(`form[aria-label="Fault switches"] button[type=submit]`),
		textContains("#flash", "Fault switches applied"),
		textContains("#switches-banner", "payments declineRate 1"), // the banner of switches on
	)
	adm.accessible("faults")

	cust.run("a declined payment cancels the order, stock released",
		cust.open("#/product/"+productID),
		chromedp.WaitVisible(css(`form[aria-label="Add to cart"] button`)),
		click(`form[aria-label="Add to cart"] button[type=submit]`),
		textContains("#flash", "Added 1"),
		cust.open("#/cart"),
		chromedp.WaitVisible(css(`form[aria-label="Checkout"] button`)),
		click(`form[aria-label="Checkout"] button`),
		chromedp.WaitVisible(css(`#order-status`)),
		textContains("#order-status", "CANCELLED"),
		textContains("#cancel-reason", "payment_declined"),
		chromedp.WaitVisible(css(`#steps li[data-step="charge"].failed`)),
		chromedp.WaitVisible(css(`#steps li[data-step="release"].done`)),
		chromedp.WaitVisible(css(`#order-events li[data-type="payments.reply.declined.v1"]`)),
		chromedp.WaitVisible(css(`#order-events li[data-type="inventory.stock_released.v1"]`)),
	)
	if status, body, _ := b.c.do("DELETE", "/api/admin/faults", admin, nil); status != 204 {
		t.Errorf("clear faults = %d %s", status, body)
	}

	adm.run("console",
		adm.open("#/console"),
		chromedp.WaitVisible(css(`#c-sagas-s table`)),
		chromedp.WaitVisible(css(`#c-broker-s table`)),
		chromedp.WaitVisible(css(`#c-health-s table`)),
		textContains("#switches-banner", "Lab switches"),
	)
	adm.accessible("console")
	adm.run("data map", adm.open("#/console/datamap"), chromedp.WaitVisible(css(`ul.tiles li`)))
	adm.accessible("data map")
	adm.run("admin live view sees every owner", adm.open("#/live"), chromedp.WaitVisible(css(`#live-events li`)),
		textContains("#switches-banner", "Lab switches"))
}

// TestBrowserScreenshots writes a PNG of each main page into POLYSHOP_SCREENSHOTS (a
// directory; the README's screenshots are made this way). Skipped unless it is set.
func TestBrowserScreenshots(t *testing.T) {
	dir := os.Getenv("POLYSHOP_SCREENSHOTS")
	if dir == "" {
		t.Skip("set POLYSHOP_SCREENSHOTS=<dir> to write screenshots of the main pages")
	}
	b := newBrowser(t)
	admin := b.c.admin()
	productID, word := b.c.product(admin, 2499, 20)
	b.c.searchInStock(word, productID, true)
	// The admin orders (it needs a shipping address): no sign-up, which users throttles.
	if status, body, _ := b.c.do("PUT", "/api/me/address", admin, map[string]string{"street": "1 Lab St", "city": "Lyon", "postalCode": "69001", "country": "FR"}); status != 200 {
		t.Fatalf("admin address = %d %s", status, body)
	}
	orderID := b.c.place(admin, "shot-"+randomHex(t), orderLine{ProductID: productID, Quantity: 1})
	b.c.terminal(admin, orderID)

	adm := b.newTab("admin")
	adm.run("log in",
		adm.open("#/login"),
		chromedp.WaitVisible(css(`input[name=email]`)),
		chromedp.SendKeys(css(`input[name=email]`), testenv.Getenv("ADMIN_EMAIL")),
		chromedp.SendKeys(css(`input[name=password]`), testenv.Getenv("ADMIN_PASSWORD")),
		click(`form[aria-label="Log in"] button[type=submit]`),
		textContains("nav", "Console"))
	pages := []struct{ file, hash, wait string }{
		{"search.png", "#/search?category=kettle", `ul.cards li`},
		{"product.png", "#/product/" + productID, `#availability`},
		{"order.png", "#/orders/" + orderID, `#order-events li`},
		{"live-events.png", "#/live", `#live-events li`},
		{"console.png", "#/console", `#c-health-s table`},
		{"data-map.png", "#/console/datamap", `ul.tiles li`},
		{"faults.png", "#/admin/faults", `input[name="payments.declineRate"]`},
	}
	for _, p := range pages {
		adm.run("page "+p.file, adm.open(p.hash), chromedp.WaitVisible(css(p.wait)), chromedp.Sleep(700*time.Millisecond))
		png, err := chromedp.Run(adm.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p.file), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
