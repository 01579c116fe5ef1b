// Package train runs the experiment: the data order, the training loop over a
// layers.Network, evaluation, metrics, checkpoints and resuming.
package train
