package catalog

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Attribute value types a category's schema may use.
const (
	TypeString      = "string"   // a JSON string, at most MaxLen characters
	TypeInt         = "int"      // a JSON number without fraction, within Min..Max
	TypeNumber      = "number"   // any JSON number, within Min..Max
	TypeBool        = "bool"     // true or false
	TypeStringArray = "string[]" // an array of strings, at most MaxItems, each at most MaxLen
	TypeObject      = "object"   // a nested object whose keys are described by Fields
)

// Limits every product's attributes must respect, whatever the category. They keep one
// document and one search document small and stop a client from creating a mapping
// explosion downstream.
const (
	MaxAttributeKeys  = 32   // keys at every level together
	MaxAttributeBytes = 8192 // size of the attributes as compact JSON
	MaxAttributeDepth = 3    // the attributes object itself is depth 1
)

// AttributeSpec describes one attribute a category allows.
type AttributeSpec struct {
	Key      string          `json:"key"`
	Type     string          `json:"type"`
	Required bool            `json:"required,omitempty"`
	Min      *float64        `json:"min,omitempty"`
	Max      *float64        `json:"max,omitempty"`
	MaxLen   int             `json:"maxLength,omitempty"`
	MaxItems int             `json:"maxItems,omitempty"`
	Enum     []string        `json:"enum,omitempty"`
	Fields   []AttributeSpec `json:"fields,omitempty"`
}

// Category is a kind of product with the attribute schema its products follow.
type Category struct {
	Name       string          `json:"name"`
	Title      string          `json:"title"`
	Attributes []AttributeSpec `json:"attributes"`
}

func num(v float64) *float64 { return &v }

var (
	colours = []string{"black", "white", "grey", "red", "blue", "green", "yellow", "navy", "beige", "brown", "pink", "purple", "orange"}
	sizes   = []string{"XS", "S", "M", "L", "XL", "XXL"}
)

// categories is the registry: a product's category must be one of these, and its
// attributes must follow that category's schema. Changing a schema is a code change,
// reviewed like any other contract change; stored products are re-validated only when
// they are next written.
var categories = []Category{
	{Name: "kettle", Title: "Kettles", Attributes: []AttributeSpec{
		{Key: "capacityMl", Type: TypeInt, Required: true, Min: num(100), Max: num(10000)},
		{Key: "material", Type: TypeString, Required: true, Enum: []string{"steel", "glass", "plastic", "ceramic", "copper"}},
		{Key: "wattage", Type: TypeInt, Min: num(100), Max: num(5000)},
		{Key: "colour", Type: TypeString, Enum: colours},
		{Key: "temperatureControl", Type: TypeBool},
	}},
	{Name: "shirt", Title: "Shirts", Attributes: []AttributeSpec{
		{Key: "sizes", Type: TypeStringArray, Required: true, MaxItems: len(sizes), Enum: sizes},
		{Key: "colours", Type: TypeStringArray, Required: true, MaxItems: len(colours), Enum: colours},
		{Key: "fabric", Type: TypeString, Required: true, MaxLen: 60},
		{Key: "fit", Type: TypeString, Enum: []string{"slim", "regular", "relaxed"}},
		{Key: "sleeve", Type: TypeString, Enum: []string{"short", "long"}},
	}},
	{Name: "book", Title: "Books", Attributes: []AttributeSpec{
		{Key: "author", Type: TypeString, Required: true, MaxLen: 120},
		{Key: "pages", Type: TypeInt, Required: true, Min: num(1), Max: num(20000)},
		{Key: "isbn", Type: TypeString, MaxLen: 17},
		{Key: "language", Type: TypeString, MaxLen: 2},
		{Key: "format", Type: TypeString, Enum: []string{"hardcover", "paperback", "ebook"}},
		{Key: "publishedYear", Type: TypeInt, Min: num(1450), Max: num(2100)},
	}},
	{Name: "headphones", Title: "Headphones", Attributes: []AttributeSpec{
		{Key: "wireless", Type: TypeBool, Required: true},
		{Key: "noiseCancelling", Type: TypeBool},
		{Key: "batteryHours", Type: TypeNumber, Min: num(0), Max: num(200)},
		{Key: "formFactor", Type: TypeString, Required: true, Enum: []string{"over-ear", "on-ear", "in-ear"}},
		{Key: "colour", Type: TypeString, Enum: colours},
	}},
	{Name: "sofa", Title: "Sofas", Attributes: []AttributeSpec{
		{Key: "seats", Type: TypeInt, Required: true, Min: num(1), Max: num(10)},
		{Key: "upholstery", Type: TypeString, Required: true, Enum: []string{"fabric", "leather", "velvet", "linen"}},
		{Key: "colour", Type: TypeString, Enum: colours},
		{Key: "dimensions", Type: TypeObject, Fields: []AttributeSpec{
			{Key: "widthCm", Type: TypeInt, Required: true, Min: num(1), Max: num(1000)},
			{Key: "depthCm", Type: TypeInt, Required: true, Min: num(1), Max: num(1000)},
			{Key: "heightCm", Type: TypeInt, Required: true, Min: num(1), Max: num(1000)},
		}},
	}},
	{Name: "coffee", Title: "Coffee", Attributes: []AttributeSpec{
		{Key: "origin", Type: TypeString, Required: true, MaxLen: 60},
		{Key: "roast", Type: TypeString, Required: true, Enum: []string{"light", "medium", "dark"}},
		{Key: "weightG", Type: TypeInt, Required: true, Min: num(50), Max: num(5000)},
		{Key: "ground", Type: TypeBool},
		{Key: "tastingNotes", Type: TypeStringArray, MaxItems: 6, MaxLen: 30},
	}},
}

// Categories returns every category, sorted by name. The result is a copy.
func Categories() []Category {
	out := slices.Clone(categories)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupCategory returns the category named name.
func LookupCategory(name string) (Category, bool) {
	for _, c := range categories {
		if c.Name == name {
			return c, true
		}
	}
	return Category{}, false
}

// CategoryNames returns the names of every category, sorted.
func CategoryNames() []string {
	names := make([]string, 0, len(categories))
	for _, c := range categories {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

// NormalizeAttributes checks attrs against the category's schema and the global limits and
// returns them in canonical form: integers as int64, numbers as float64, string arrays as
// []any of strings, nested objects as map[string]any. Problems are appended to v with
// fields "attributes.<key>[.<key>]".
func (c Category) NormalizeAttributes(attrs map[string]any, v *Validation) map[string]any {
	if attrs == nil {
		attrs = map[string]any{}
	}
	// The global limits come first: they bound the work the schema check does.
	if n := countKeys(attrs); n > MaxAttributeKeys {
		v.Add("attributes", fmt.Sprintf("has %d keys, at most %d are allowed", n, MaxAttributeKeys))
		return nil
	}
	if d := depth(attrs); d > MaxAttributeDepth {
		v.Add("attributes", fmt.Sprintf("is nested %d levels deep, at most %d are allowed", d, MaxAttributeDepth))
		return nil
	}
	if b, err := json.Marshal(attrs); err != nil {
		v.Add("attributes", "is not representable as JSON")
		return nil
	} else if len(b) > MaxAttributeBytes {
		v.Add("attributes", fmt.Sprintf("is %d bytes as JSON, at most %d are allowed", len(b), MaxAttributeBytes))
		return nil
	}
	return normalizeObject("attributes", c.Attributes, attrs, v)
}

func normalizeObject(path string, specs []AttributeSpec, in map[string]any, v *Validation) map[string]any {
	out := make(map[string]any, len(in))
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		i := slices.IndexFunc(specs, func(s AttributeSpec) bool { return s.Key == k })
		if i < 0 {
			v.Add(path+"."+k, "is not an attribute of this category")
			continue
		}
		if in[k] == nil {
			continue // null means absent
		}
		if val, ok := normalizeValue(path+"."+k, specs[i], in[k], v); ok {
			out[k] = val
		}
	}
	for _, s := range specs {
		if s.Required && out[s.Key] == nil && in[s.Key] == nil {
			v.Add(path+"."+s.Key, "is required")
		}
	}
	return out
}

func normalizeValue(field string, s AttributeSpec, raw any, v *Validation) (any, bool) {
	switch s.Type {
	case TypeString:
		str, ok := raw.(string)
		if !ok {
			v.Add(field, "must be a string")
			return nil, false
		}
		return checkString(field, s, str, v)
	case TypeInt, TypeNumber:
		f, ok := toFloat(raw)
		if !ok {
			v.Add(field, "must be a number")
			return nil, false
		}
		if s.Type == TypeInt && (f != math.Trunc(f) || math.Abs(f) > 1<<53) {
			v.Add(field, "must be an integer")
			return nil, false
		}
		if s.Min != nil && f < *s.Min {
			v.Add(field, fmt.Sprintf("must be at least %g", *s.Min))
			return nil, false
		}
		if s.Max != nil && f > *s.Max {
			v.Add(field, fmt.Sprintf("must be at most %g", *s.Max))
			return nil, false
		}
		if s.Type == TypeInt {
			return int64(f), true
		}
		return f, true
	case TypeBool:
		b, ok := raw.(bool)
		if !ok {
			v.Add(field, "must be true or false")
			return nil, false
		}
		return b, true
	case TypeStringArray:
		arr, ok := toSlice(raw)
		if !ok {
			v.Add(field, "must be an array of strings")
			return nil, false
		}
		if s.MaxItems > 0 && len(arr) > s.MaxItems {
			v.Add(field, fmt.Sprintf("has %d items, at most %d are allowed", len(arr), s.MaxItems))
			return nil, false
		}
		out := make([]any, 0, len(arr))
		seen := map[string]bool{}
		for i, item := range arr {
			str, ok := item.(string)
			if !ok {
				v.Add(fmt.Sprintf("%s[%d]", field, i), "must be a string")
				return nil, false
			}
			norm, ok := checkString(fmt.Sprintf("%s[%d]", field, i), s, str, v)
			if !ok {
				return nil, false
			}
			if seen[str] {
				v.Add(fmt.Sprintf("%s[%d]", field, i), "is a duplicate")
				return nil, false
			}
			seen[str] = true
			out = append(out, norm)
		}
		return out, true
	case TypeObject:
		m, ok := toMap(raw)
		if !ok {
			v.Add(field, "must be an object")
			return nil, false
		}
		before := len(v.Fields)
		out := normalizeObject(field, s.Fields, m, v)
		return out, len(v.Fields) == before
	}
	v.Add(field, "has a type this service does not know")
	return nil, false
}

func checkString(field string, s AttributeSpec, str string, v *Validation) (any, bool) {
	str = strings.TrimSpace(str)
	if str == "" {
		v.Add(field, "must not be empty")
		return nil, false
	}
	max := s.MaxLen
	if max == 0 {
		max = 200
	}
	if n := len([]rune(str)); n > max {
		v.Add(field, fmt.Sprintf("is %d characters long, at most %d are allowed", n, max))
		return nil, false
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
		v.Add(field, "must be one of "+strings.Join(s.Enum, ", "))
		return nil, false
	}
	return str, true
}

func toFloat(raw any) (float64, bool) {
	switch n := raw.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func toSlice(raw any) ([]any, bool) {
	switch a := raw.(type) {
	case []any:
		return a, true
	case []string:
		out := make([]any, len(a))
		for i, s := range a {
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

func toMap(raw any) (map[string]any, bool) {
	m, ok := raw.(map[string]any)
	return m, ok
}

func countKeys(v any) int {
	switch x := v.(type) {
	case map[string]any:
		n := len(x)
		for _, c := range x {
			n += countKeys(c)
		}
		return n
	case []any:
		n := 0
		for _, c := range x {
			n += countKeys(c)
		}
		return n
	}
	return 0
}

// depth is 1 for an object of scalars; arrays do not add a level of their own.
func depth(v any) int {
	switch x := v.(type) {
	case map[string]any:
		d := 0
		for _, c := range x {
			d = max(d, depth(c))
		}
		return d + 1
	case []any:
		d := 0
		for _, c := range x {
			d = max(d, depth(c))
		}
		return d
	}
	return 0
}

// equalValues compares two attribute trees by their JSON form, which is canonical (map keys
// sorted) and blind to the difference between int32 and int64 coming back from a driver.
func equalValues(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
