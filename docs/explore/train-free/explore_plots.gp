set terminal pngcairo size 820,620
set table '/work/main/docs/explore/train-free/explore_contour_0.dat'
set contour base
set cntrparam levels auto 6
unset surface
set view map
splot '/work/main/docs/explore/train-free/explore_grid_0.dat' using 1:2:4 with lines
unset table
unset contour
set surface
set output '/work/main/docs/explore/train-free/explore_heat_2-4-2.png'
set xlabel 'Bi (intra-kernel rank)'
set ylabel 'Bc (cross-kernel rank)'
set cblabel 'relative projection error'
set palette rgbformulae 33,13,10 negative
set title 'cnn3, qb-qu-qv = 2-4-2: projection error (colour), whole-model memory ratio (lines)'
set xrange [0.5:4.5]
set yrange [4:36]
plot '/work/main/docs/explore/train-free/explore_grid_0.dat' using 1:2:3 with image notitle, '/work/main/docs/explore/train-free/explore_contour_0.dat' using 1:2 with lines lc rgb 'white' lw 1.5 notitle, '/work/main/docs/explore/train-free/explore_grid_0.dat' using 1:2:(sprintf('%.3f', $4)) with labels font ',8' notitle
reset
set terminal pngcairo size 820,620
set table '/work/main/docs/explore/train-free/explore_contour_1.dat'
set contour base
set cntrparam levels auto 6
unset surface
set view map
splot '/work/main/docs/explore/train-free/explore_grid_1.dat' using 1:2:4 with lines
unset table
unset contour
set surface
set output '/work/main/docs/explore/train-free/explore_heat_3-6-3.png'
set xlabel 'Bi (intra-kernel rank)'
set ylabel 'Bc (cross-kernel rank)'
set cblabel 'relative projection error'
set palette rgbformulae 33,13,10 negative
set title 'cnn3, qb-qu-qv = 3-6-3: projection error (colour), whole-model memory ratio (lines)'
set xrange [0.5:4.5]
set yrange [4:36]
plot '/work/main/docs/explore/train-free/explore_grid_1.dat' using 1:2:3 with image notitle, '/work/main/docs/explore/train-free/explore_contour_1.dat' using 1:2 with lines lc rgb 'white' lw 1.5 notitle, '/work/main/docs/explore/train-free/explore_grid_1.dat' using 1:2:(sprintf('%.3f', $4)) with labels font ',8' notitle
reset
set terminal pngcairo size 820,620
set table '/work/main/docs/explore/train-free/explore_contour_2.dat'
set contour base
set cntrparam levels auto 6
unset surface
set view map
splot '/work/main/docs/explore/train-free/explore_grid_2.dat' using 1:2:4 with lines
unset table
unset contour
set surface
set output '/work/main/docs/explore/train-free/explore_heat_4-4-4.png'
set xlabel 'Bi (intra-kernel rank)'
set ylabel 'Bc (cross-kernel rank)'
set cblabel 'relative projection error'
set palette rgbformulae 33,13,10 negative
set title 'cnn3, qb-qu-qv = 4-4-4: projection error (colour), whole-model memory ratio (lines)'
set xrange [0.5:4.5]
set yrange [4:36]
plot '/work/main/docs/explore/train-free/explore_grid_2.dat' using 1:2:3 with image notitle, '/work/main/docs/explore/train-free/explore_contour_2.dat' using 1:2 with lines lc rgb 'white' lw 1.5 notitle, '/work/main/docs/explore/train-free/explore_grid_2.dat' using 1:2:(sprintf('%.3f', $4)) with labels font ',8' notitle
reset
set terminal pngcairo size 820,620
set table '/work/main/docs/explore/train-free/explore_contour_3.dat'
set contour base
set cntrparam levels auto 6
unset surface
set view map
splot '/work/main/docs/explore/train-free/explore_grid_3.dat' using 1:2:4 with lines
unset table
unset contour
set surface
set output '/work/main/docs/explore/train-free/explore_heat_8-8-8.png'
set xlabel 'Bi (intra-kernel rank)'
set ylabel 'Bc (cross-kernel rank)'
set cblabel 'relative projection error'
set palette rgbformulae 33,13,10 negative
set title 'cnn3, qb-qu-qv = 8-8-8: projection error (colour), whole-model memory ratio (lines)'
set xrange [0.5:4.5]
set yrange [4:36]
plot '/work/main/docs/explore/train-free/explore_grid_3.dat' using 1:2:3 with image notitle, '/work/main/docs/explore/train-free/explore_contour_3.dat' using 1:2 with lines lc rgb 'white' lw 1.5 notitle, '/work/main/docs/explore/train-free/explore_grid_3.dat' using 1:2:(sprintf('%.3f', $4)) with labels font ',8' notitle
reset
set terminal pngcairo size 820,620
set table '/work/main/docs/explore/train-free/explore_contour_4.dat'
set contour base
set cntrparam levels auto 6
unset surface
set view map
splot '/work/main/docs/explore/train-free/explore_grid_4.dat' using 1:2:4 with lines
unset table
unset contour
set surface
set output '/work/main/docs/explore/train-free/explore_heat_32-32-32.png'
set xlabel 'Bi (intra-kernel rank)'
set ylabel 'Bc (cross-kernel rank)'
set cblabel 'relative projection error'
set palette rgbformulae 33,13,10 negative
set title 'cnn3, qb-qu-qv = 32-32-32: projection error (colour), whole-model memory ratio (lines)'
set xrange [0.5:4.5]
set yrange [4:36]
plot '/work/main/docs/explore/train-free/explore_grid_4.dat' using 1:2:3 with image notitle, '/work/main/docs/explore/train-free/explore_contour_4.dat' using 1:2 with lines lc rgb 'white' lw 1.5 notitle, '/work/main/docs/explore/train-free/explore_grid_4.dat' using 1:2:(sprintf('%.3f', $4)) with labels font ',8' notitle
reset
set terminal pngcairo size 820,620
set output '/work/main/docs/explore/train-free/explore_pareto.png'
set logscale x
set grid
set xlabel 'whole-model memory ratio r_m'
set ylabel 'relative projection error'
set key top right
set title 'cnn3: projection error against memory ratio'
plot '/work/main/docs/explore/train-free/explore_points.dat' index 0 using 1:2 with points pt 7 lc rgb 'gray50' title 'grid settings', '/work/main/docs/explore/train-free/explore_points.dat' index 1 using 1:2 with linespoints pt 7 lw 2 lc rgb 'red' title 'Pareto front', '/work/main/docs/explore/train-free/explore_points.dat' index 2 using 1:2 with points pt 3 ps 2.5 lw 2 lc rgb 'blue' title 'per-layer search'
