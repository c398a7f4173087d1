// Package seed generates realistic, deterministic demo products: the same seed and count
// always give the same products (names, prices, attributes), across every category of the
// registry with their different attribute shapes.
package seed

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"polyshop/services/catalog/internal/catalog"
)

var (
	brands     = []string{"Nordvik", "Aurelia", "Kestrel", "Bramble & Co", "Lumen", "Oakhurst", "Verda", "Halcyon", "Tidewater", "Copperline", "Fjordhaus", "Marlow"}
	adjectives = []string{"Classic", "Compact", "Deluxe", "Everyday", "Premium", "Studio", "Urban", "Heritage", "Essential", "Signature"}
	colours    = []string{"black", "white", "grey", "red", "blue", "green", "yellow", "navy", "beige", "brown"}
	bookAdj    = []string{"Silent", "Hidden", "Last", "Northern", "Broken", "Golden", "Forgotten", "Distant", "Quiet", "Endless"}
	bookNoun   = []string{"Harbour", "Garden", "Algorithm", "Winter", "River", "Archive", "Lighthouse", "Orchard", "Signal", "Empire"}
	firstNames = []string{"Ada", "Jonas", "Mira", "Tomasz", "Leila", "Anders", "Chiara", "Kofi", "Ines", "Ravi"}
	lastNames  = []string{"Lindqvist", "Moreau", "Okafor", "Kowalski", "Haddad", "Berg", "Ricci", "Mensah", "Duarte", "Iyer"}
	origins    = []string{"Ethiopia Yirgacheffe", "Colombia Huila", "Kenya Nyeri", "Guatemala Antigua", "Brazil Cerrado", "Sumatra Mandheling", "Costa Rica Tarrazú", "Rwanda Nyamasheke"}
	notes      = []string{"chocolate", "citrus", "berry", "caramel", "floral", "nutty", "stone fruit", "spice"}
	sofaNames  = []string{"Harlow", "Sundby", "Ashford", "Lugano", "Kinsale", "Mora", "Bellamy", "Oslo"}
	models     = []string{"Air", "Pro", "Studio", "Go", "Max", "Lite", "One", "Quiet"}
	fabrics    = []string{"cotton", "linen", "organic cotton", "oxford cotton", "flannel", "chambray"}
)

// Product returns the i-th product of the stream for seed. Each product has its own PRNG
// derived from (seed, i), so products do not depend on how many were generated before.
func Product(seed uint64, i int) catalog.NewProduct {
	r := rand.New(rand.NewPCG(seed, uint64(i)*0x9E3779B97F4A7C15+1))
	cats := catalog.CategoryNames()
	cat := cats[i%len(cats)]
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	stock := int64(r.IntN(200))
	var np catalog.NewProduct
	switch cat {
	case "kettle":
		capacity := 500 + 100*r.IntN(16)
		material := pick([]string{"steel", "glass", "plastic", "ceramic", "copper"})
		colour := pick(colours)
		np = catalog.NewProduct{
			Name:        fmt.Sprintf("%s %s %s Kettle %.1fL", pick(brands), pick(adjectives), title(material), float64(capacity)/1000),
			Description: fmt.Sprintf("A %s %s kettle holding %d ml. Boils fast, pours cleanly and switches off by itself.", colour, material, capacity),
			Attributes: map[string]any{"capacityMl": capacity, "material": material, "wattage": 1200 + 100*r.IntN(18),
				"colour": colour, "temperatureControl": r.IntN(2) == 0},
		}
		np.Price = &catalog.Money{Amount: int64(1999 + 500*r.IntN(20)), Currency: "EUR"}
	case "shirt":
		fabric, fit, sleeve := pick(fabrics), pick([]string{"slim", "regular", "relaxed"}), pick([]string{"short", "long"})
		cs := distinct(r, colours, 1+r.IntN(3))
		np = catalog.NewProduct{
			Name:        fmt.Sprintf("%s %s %s %s-Sleeve Shirt", pick(brands), title(fit), title(fabric), title(sleeve)),
			Description: fmt.Sprintf("A %s-fit shirt in %s with %s sleeves. Available in %s.", fit, fabric, sleeve, strings.Join(cs, ", ")),
			Attributes: map[string]any{"sizes": toAny(distinctOrdered(r, []string{"XS", "S", "M", "L", "XL", "XXL"}, 2+r.IntN(4))),
				"colours": toAny(cs), "fabric": fabric, "fit": fit, "sleeve": sleeve},
		}
		np.Price = &catalog.Money{Amount: int64(1499 + 250*r.IntN(24)), Currency: "EUR"}
	case "book":
		author := pick(firstNames) + " " + pick(lastNames)
		titleText := fmt.Sprintf("The %s %s", pick(bookAdj), pick(bookNoun))
		format := pick([]string{"hardcover", "paperback", "ebook"})
		np = catalog.NewProduct{
			Name:        fmt.Sprintf("%s (%s, %s)", titleText, author, format),
			Description: fmt.Sprintf("%s by %s: a %s novel in %d chapters about memory, distance and the sea.", titleText, author, pick([]string{"gripping", "quiet", "sweeping", "witty"}), 10+r.IntN(40)),
			Attributes: map[string]any{"author": author, "pages": 120 + r.IntN(700), "isbn": fmt.Sprintf("978-%d-%04d-%04d-%d", r.IntN(10), r.IntN(10000), r.IntN(10000), r.IntN(10)),
				"language": pick([]string{"en", "de", "fr", "nl", "sv"}), "format": format, "publishedYear": 1950 + r.IntN(76)},
		}
		np.Price = &catalog.Money{Amount: int64(799 + 100*r.IntN(30)), Currency: "EUR"}
	case "headphones":
		form := pick([]string{"over-ear", "on-ear", "in-ear"})
		wireless := r.IntN(4) != 0
		anc := r.IntN(2) == 0
		kind := "Wired"
		if wireless {
			kind = "Wireless"
		}
		attrs := map[string]any{"wireless": wireless, "noiseCancelling": anc, "formFactor": form, "colour": pick(colours)}
		desc := fmt.Sprintf("%s %s headphones", strings.ToLower(kind), form)
		if wireless {
			h := 10 + r.IntN(50)
			attrs["batteryHours"] = h
			desc += fmt.Sprintf(" with %d hours of battery", h)
		}
		if anc {
			desc += " and active noise cancelling"
		}
		np = catalog.NewProduct{
			Name:        fmt.Sprintf("%s %s %s %s Headphones", pick(brands), pick(models), kind, title(form)),
			Description: title(desc) + ".",
			Attributes:  attrs,
		}
		np.Price = &catalog.Money{Amount: int64(2999 + 1000*r.IntN(30)), Currency: "EUR"}
	case "sofa":
		seats := 2 + r.IntN(3)
		uph := pick([]string{"fabric", "leather", "velvet", "linen"})
		colour := pick(colours)
		np = catalog.NewProduct{
			Name:        fmt.Sprintf("%s %d-Seater %s Sofa", pick(sofaNames), seats, title(uph)),
			Description: fmt.Sprintf("A %d-seat sofa in %s %s with deep cushions and solid oak legs.", seats, colour, uph),
			Attributes: map[string]any{"seats": seats, "upholstery": uph, "colour": colour,
				"dimensions": map[string]any{"widthCm": 120 + 40*seats + r.IntN(20), "depthCm": 85 + r.IntN(20), "heightCm": 75 + r.IntN(15)}},
		}
		np.Price = &catalog.Money{Amount: int64(39900 + 5000*r.IntN(30)), Currency: "EUR"}
	case "coffee":
		origin, roast := pick(origins), pick([]string{"light", "medium", "dark"})
		weight := []int{250, 500, 1000}[r.IntN(3)]
		ns := distinct(r, notes, 2+r.IntN(2))
		np = catalog.NewProduct{
			Name:        fmt.Sprintf("%s %s Roast %dg", origin, title(roast), weight),
			Description: fmt.Sprintf("Single-origin beans from %s, %s roasted, with notes of %s.", origin, roast, strings.Join(ns, " and ")),
			Attributes:  map[string]any{"origin": origin, "roast": roast, "weightG": weight, "ground": r.IntN(3) == 0, "tastingNotes": toAny(ns)},
		}
		np.Price = &catalog.Money{Amount: int64(699 + 100*r.IntN(25)), Currency: "EUR"}
	default:
		panic("seed: no generator for category " + cat)
	}
	np.Category = cat
	np.InitialStock = &stock
	return np
}

func title(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

func distinct(r *rand.Rand, xs []string, n int) []string {
	idx := r.Perm(len(xs))[:min(n, len(xs))]
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}

// distinctOrdered picks n items keeping the order of xs (sizes read XS..XXL).
func distinctOrdered(r *rand.Rand, xs []string, n int) []string {
	start := r.IntN(len(xs) - min(n, len(xs)) + 1)
	return append([]string(nil), xs[start:start+min(n, len(xs))]...)
}

func toAny(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
