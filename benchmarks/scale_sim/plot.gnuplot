# Plots of benchmarks/scale_sim/sweep.sh's CSVs (prism_scale_sim sweep/validate).
# Usage: gnuplot -e "res='benchmarks/results'; out='docs/images'" plot.gnuplot
# Sweep columns: 2 node_ranks, 4 gcs_ranks, 7 tasks_per_s, 11 gs_util,
# 13 gs_heartbeats_per_s, 17 max_shard_util, 23 pushed_fraction.
# Validation columns: 1 case, 2 node_ranks, 4 measured, 5 simulated.
set datafile separator ","
set terminal pngcairo size 1200,460 font "DejaVu Sans,10"
f(name) = sprintf("%s/scale_sim_%s.csv", res, name)

# ---- tasks/s against node ranks, and the validation ------------------------
set output sprintf("%s/scale_sim_throughput.png", out)
set multiplot layout 1,2 title "Prism control plane with work stealing, simulated (calibrated on this 2-core VM)"
set logscale xy
set grid
set key top left font ",8"
set xlabel "node ranks (16 cores and 16 CPU slots each)"
set ylabel "tasks/s"
set xrange [0.8:1300]
plot f("a_empty") using 2:($4==48 ? $7 : 1/0) with linespoints lw 2 pt 7 lc rgb "#1f77b4" \
       title "(a) client per node, empty tasks", \
     18000 * x with lines dt 2 lc rgb "#d62728" title "Ray paper Fig. 7 (1.8M/s at 100 nodes)", \
     f("a_1ms_hb1000") using 2:($4==3 ? $7 : 1/0) with linespoints lw 2 pt 5 lc rgb "#2ca02c" \
       title "(a) 1 ms tasks", \
     f("b_1ms_steal_hb1000") using 2:7 with linespoints lw 2 pt 9 lc rgb "#9467bd" \
       title "(b) one driver, 1 ms tasks, stealing", \
     f("b_1ms_spill") using 2:7 with linespoints lw 1 pt 8 dt 2 lc rgb "#9467bd" \
       title "(b) ... old design (spill, batch 64)", \
     f("c_fib20_steal") using 2:7 with linespoints lw 2 pt 4 lc rgb "#8c564b" \
       title "(c) nested fib(20), 100 us leaves, stealing", \
     f("c_fib20_spill") using 2:7 with linespoints lw 1 pt 4 dt 2 lc rgb "#8c564b" \
       title "(c) ... old design (spill one at a time)"
unset logscale y
set logscale x 2
set xrange [0.8:10]
set xlabel "node ranks (all ranks on 2 shared cores)"
set ylabel "tasks/s (validation, fresh runs)"
set yrange [0:2.1e6]
set key top right font ",8"
v = sprintf("%s/scale_sim_validation.csv", res)
is(c) = strcol(1) eq c
plot v skip 1 using 2:(is("b_one_driver") ? $4 : 1/0) with linespoints lw 2 pt 7 lc rgb "#9467bd" \
       title "(b) async, stealing, measured", \
     v skip 1 using 2:(is("b_one_driver") ? $5 : 1/0) with linespoints lw 2 pt 6 dt 2 lc rgb "#9467bd" \
       title "... simulated", \
     v skip 1 using 2:(is("a_per_node_drivers") ? $4 : 1/0) with linespoints lw 2 pt 5 lc rgb "#1f77b4" \
       title "(a) multi, stealing, measured", \
     v skip 1 using 2:(is("a_per_node_drivers") ? $5 : 1/0) with linespoints lw 2 pt 4 dt 2 lc rgb "#1f77b4" \
       title "... simulated", \
     v skip 1 using 2:(is("c_nested") ? $4 : 1/0) with linespoints lw 2 pt 9 lc rgb "#8c564b" \
       title "(c) nested fib(18), stealing, measured", \
     v skip 1 using 2:(is("c_nested") ? $5 : 1/0) with linespoints lw 2 pt 8 dt 2 lc rgb "#8c564b" \
       title "... simulated", \
     v skip 1 using 2:(is("c_nested_no_stealing") ? $4 : 1/0) with linespoints lw 1 pt 13 lc rgb "#7f7f7f" \
       title "(c) without stealing, measured", \
     v skip 1 using 2:(is("c_nested_no_stealing") ? $5 : 1/0) with linespoints lw 1 pt 12 dt 2 lc rgb "#7f7f7f" \
       title "... simulated"
unset multiplot

# ---- load of the GCS ranks ---------------------------------------------------
set output sprintf("%s/scale_sim_gcs_load.png", out)
set multiplot layout 1,2 title "Where the control plane saturates (busy fraction of one thread)"
set logscale x 10
set xrange [0.8:1300]
set yrange [0:1.1]
set key top left font ",8"
set xlabel "node ranks"
set ylabel "busiest GCS replica (lineage + node rows)"
plot f("a_empty") using 2:($4==1 ? $17 : 1/0) with linespoints lw 2 pt 7 title "(a) empty: 1 GCS rank", \
     f("a_empty") using 2:($4==3 ? $17 : 1/0) with linespoints lw 2 pt 6 title "... chain of 3", \
     f("a_empty") using 2:($4==12 ? $17 : 1/0) with linespoints lw 2 pt 5 title "... 4 shards x 3", \
     f("a_empty") using 2:($4==48 ? $17 : 1/0) with linespoints lw 2 pt 4 title "... 16 shards x 3", \
     1 with lines lc rgb "black" dt 3 notitle
set ylabel "first GCS rank (global scheduler + shard 0 head)"
plot f("a_1ms_hb1000") using 2:($4==3 ? $11 : 1/0) with linespoints lw 2 pt 7 \
       title "(a) 1 ms tasks, stealing, heartbeat 1 ms", \
     f("a_1ms_hb10000") using 2:($4==3 ? $11 : 1/0) with linespoints lw 2 pt 6 \
       title "(a) ... heartbeat 10 ms", \
     f("a_1ms_spill") using 2:11 with linespoints lw 1 pt 6 dt 2 \
       title "(a) ... old design (spill)", \
     f("b_1ms_steal_hb1000") using 2:11 with linespoints lw 2 pt 5 title "(b) one driver, stealing, heartbeat 1 ms", \
     f("b_1ms_steal_hb10000") using 2:11 with linespoints lw 2 pt 4 title "(b) ... heartbeat 10 ms", \
     f("b_1ms_spill") using 2:11 with linespoints lw 1 pt 4 dt 2 title "(b) ... old design (spill, batch 64)", \
     1 with lines lc rgb "black" dt 3 notitle
unset multiplot
