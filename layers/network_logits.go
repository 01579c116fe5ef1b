package layers

import "errors"

// Logits downloads the logits of the last finished step: Batch rows of
// Classes() values, row-major, before the softmax. Both slots write one logits
// tensor, so the values are only those of a known step when nothing is
// outstanding: call Flush after the Submit whose logits are wanted (Logits
// refuses while a step is still in flight).
func (n *Network) Logits() ([]float32, error) {
	if len(n.pending) > 0 {
		return nil, errors.New("network: logits: a step is still outstanding (Flush first)")
	}
	return n.logits.Download()
}
