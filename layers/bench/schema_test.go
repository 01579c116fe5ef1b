package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
)

// validate checks v (decoded JSON) against the subset of JSON Schema that
// testdata/schema.json uses: type, required, properties, items, enum, minimum
// and exclusiveMinimum. It returns every violation, with its path.
func validate(schema map[string]any, v any, path string) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if t, ok := schema["type"].(string); ok {
		okType := false
		switch t {
		case "object":
			_, okType = v.(map[string]any)
		case "array":
			_, okType = v.([]any)
		case "string":
			_, okType = v.(string)
		case "boolean":
			_, okType = v.(bool)
		case "number":
			f, isNum := v.(float64)
			okType = isNum && !math.IsNaN(f) && !math.IsInf(f, 0)
		case "integer":
			f, isNum := v.(float64)
			okType = isNum && f == math.Trunc(f)
		}
		if !okType {
			bad("want %s, got %T %v", t, v, v)
			return errs
		}
	}
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || e == v
		}
		if !found {
			bad("%v not in %v", v, enum)
		}
	}
	if f, ok := v.(float64); ok {
		if m, ok := schema["minimum"].(float64); ok && f < m {
			bad("%v below the minimum %v", f, m)
		}
		if m, ok := schema["exclusiveMinimum"].(float64); ok && f <= m {
			bad("%v not above %v", f, m)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		if req, ok := schema["required"].([]any); ok {
			for _, k := range req {
				if _, ok := obj[k.(string)]; !ok {
					bad("missing %q", k)
				}
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for k, sub := range props {
			if x, ok := obj[k]; ok {
				errs = append(errs, validate(sub.(map[string]any), x, path+"."+k)...)
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := schema["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, validate(items, x, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	return s
}

// checkJSON validates the JSON in b against the schema.
func checkJSON(t *testing.T, b []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, e := range validate(loadSchema(t), v, "$") {
		t.Error(e)
	}
}

func TestValidatorCatchesErrors(t *testing.T) {
	s := loadSchema(t)
	for name, doc := range map[string]string{
		"missing key":    `{"schema": "vktrain-bench/1"}`,
		"wrong type":     `{"schema": 1}`,
		"bad enum":       `{"schema": "other"}`,
		"non-positive":   `{"peaks": {"fma_gflops": 0, "copy_gbs": 1, "fma_kernel": "", "copy_kernel": ""}}`,
		"bad array item": `{"kernels": [{"name": 3}]}`,
	} {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		if errs := validate(s, v, "$"); len(errs) == 0 {
			t.Errorf("%s: %s passed", name, doc)
		}
	}
}

// TestTorchReport checks the committed reports (torch_bench.py's and vktrain
// bench's on the project's machine, 224x224, batch 4) against the schema.
func TestTorchReport(t *testing.T) {
	for _, path := range []string{"testdata/torch_cpu_224_b4.json", "testdata/lavapipe_224_b4.json"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checkJSON(t, b)
		if _, err := ReadReport(path); err != nil {
			t.Fatal(err)
		}
	}
}
