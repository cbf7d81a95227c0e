"""Benchmarks of the app against the alternatives a user would pick, on the user's own machine.

Only app dependencies are needed (numpy, onnxruntime, soundfile, soxr); librosa and
python-speech-features rows appear when those are importable. `edge-asc bench` runs the quick
version (`command`) and prints figures only; benchmarks/ in the repository adds the
training-side comparisons and the goals the project holds the figures to.
"""
