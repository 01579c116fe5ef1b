package ref

import "fmt"

// index4 returns the row-major offset of element (a, b, c, d) in a tensor
// whose trailing three dimensions are db, dc and dd.
func index4(a, b, c, d, db, dc, dd int) int {
	return ((a*db+b)*dc+c)*dd + d
}

// checkLen returns an error when the slice called name has length got
// instead of want.
func checkLen(name string, got, want int) error {
	if got != want {
		return fmt.Errorf("ref: %s has length %d, want %d", name, got, want)
	}
	return nil
}

// field is a named integer parameter, used to report which one is invalid.
type field struct {
	name  string
	value int
}

// checkAtLeast returns an error naming the first field below min.
func checkAtLeast(kind string, min int, fields ...field) error {
	for _, f := range fields {
		if f.value < min {
			return fmt.Errorf("ref: %s %s = %d, must be >= %d", kind, f.name, f.value, min)
		}
	}
	return nil
}

// lenCheck is one expected slice length, for checkLens.
type lenCheck struct {
	name      string
	got, want int
}

// checkLens returns the error of the first failing length check.
func checkLens(checks ...lenCheck) error {
	for _, c := range checks {
		if err := checkLen(c.name, c.got, c.want); err != nil {
			return err
		}
	}
	return nil
}
