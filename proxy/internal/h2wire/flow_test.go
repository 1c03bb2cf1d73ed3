package h2wire

import "testing"

func TestInflow(t *testing.T) {
	f := NewInflow(100)
	if !f.Take(60) || !f.Take(40) {
		t.Fatal("frames within the window refused")
	}
	if f.Take(1) {
		t.Error("a frame past the window taken")
	}
	if inc := f.Consumed(49); inc != 0 {
		t.Errorf("49 of 100 read: update %d, want none before half the window", inc)
	}
	if inc := f.Consumed(1); inc != 50 {
		t.Errorf("50 of 100 read: update %d, want 50", inc)
	}
	if !f.Take(50) || f.Take(1) {
		t.Error("the update did not give back exactly 50 bytes")
	}
}
