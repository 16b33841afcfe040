"""Charts drawn with block characters (no plotting library): grouped horizontal bars, trends as column
bands, histograms of day counts. `ChartSpec` says what to draw; `ReportChart` draws it at its width."""
