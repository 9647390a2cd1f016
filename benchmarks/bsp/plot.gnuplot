# Plots one app's sweep (OUT_DIR/APP.dat, written by summarize.py):
# left, efficiency of Prism and BSP against the CV of episode durations;
# right, the speed-up BSP wall / Prism wall with its range over the repetitions.
# Usage: gnuplot -e "dir='OUT_DIR'; app='rollouts'" plot.gnuplot
set terminal pngcairo size 1100,420 font "DejaVu Sans,10"
set output sprintf("%s/bsp_%s.png", dir, app)
data = sprintf("%s/%s.dat", dir, app)
set multiplot layout 1,2 title sprintf("%s: Prism vs bulk-synchronous MPI, same episodes (2-core VM)", app)
set grid
set key bottom left
set xlabel "coefficient of variation of episode durations"
set xrange [-0.1:2.1]
set ylabel "efficiency (CPU time of episodes / (wall x cores))"
set yrange [0:1.05]
plot data index 0 using 1:8 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "Prism, 2 workers", \
     data index 0 using 1:7 with linespoints lw 2 pt 5 lc rgb "#d62728" title "BSP, 2 ranks", \
     data index 1 using 1:8 with linespoints lw 2 pt 6 dt 2 lc rgb "#1f77b4" title "Prism, 4 workers", \
     data index 1 using 1:7 with linespoints lw 2 pt 4 dt 2 lc rgb "#d62728" title "BSP, 4 ranks"
set ylabel "speed-up of Prism (BSP wall / Prism wall)"
set yrange [0.5:*]
set key top left
plot data index 0 using 1:4:5:6 with yerrorlines lw 2 pt 7 lc rgb "#2ca02c" title "2 workers", \
     data index 1 using 1:4:5:6 with yerrorlines lw 2 pt 6 dt 2 lc rgb "#9467bd" title "4 workers", \
     1.5 with lines dt 3 lc rgb "black" title "target 1.5x (CV >= 1)", \
     1.0 with lines lc rgb "gray" title "parity"
unset multiplot
