package feature

import "testing"

// TestSpec_ValidateOutputFields checks Column.Scale and Spec.KeyName.
func TestSpec_ValidateOutputFields(t *testing.T) {
	f := func(key string, col Column, ok bool) {
		t.Helper()
		s := Spec{Name: "s", KeyName: key, Columns: []Column{{Name: "n", Type: TypeInt}, col},
			Reduce: func(*User, Rows, *Record) error { return nil }}
		if err := s.Validate(); (err == nil) != ok {
			t.Errorf("KeyName %q, column %+v: error %v, want ok=%v", key, col, err, ok)
		}
	}
	f("", Column{Name: "amt", Type: TypeFloat, Scale: 4}, true)
	f("", Column{Name: "amt", Type: TypeFloat, Scale: MaxScale}, true)
	f("", Column{Name: "amt", Type: TypeFloat, Scale: MaxScale + 1}, false)
	f("", Column{Name: "amt", Type: TypeFloat, Scale: -1}, false)
	f("", Column{Name: "amt", Type: TypeInt, Scale: 2}, false)
	f("receiver", Column{Name: "amt", Type: TypeFloat}, true)
	f("N", Column{Name: "amt", Type: TypeFloat}, false) // also a column, without case
	f("a,b", Column{Name: "amt", Type: TypeFloat}, false)

	inv := Invoice()
	exact := map[string]bool{}
	for _, c := range inv.Columns {
		if c.Scale > 0 {
			exact[c.Name] = c.Scale == AmountDigits
		}
	}
	for _, name := range []string{"amount_total", "amount_min", "amount_max", "top_receiver_amount"} {
		if !exact[name] {
			t.Errorf("built-in %s has no Scale of %d", name, AmountDigits)
		}
	}
	if len(exact) != 4 {
		t.Errorf("built-in columns with a Scale: %v, want the four exact amounts", exact)
	}
}
