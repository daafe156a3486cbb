/// The report figures' logarithmic axis, and the cluster-weight figure that needs it, drawn from logged metrics.
module DiffusionFunctional.Experiments.Tests.PlotAxisTests

open System
open System.IO
open Expecto
open DiffusionFunctional.Experiments.Demo
open DiffusionFunctional.Experiments.Plots
open DiffusionFunctional.Experiments.Reproduce
open DiffusionFunctional.Api.Tests.TestSupport

// ScottPlot places the ticks when it renders: render once, then read them.
let private leftTicks (plot: ScottPlot.Plot) =
    plot.GetImageBytes(600, 400, ScottPlot.ImageFormat.Png) |> ignore
    plot.Axes.Left.TickGenerator.Ticks |> Array.map (fun t -> t.Label, t.Position) |> List.ofArray

let private ticksFor (values: float list) =
    use plot = new ScottPlot.Plot()
    let positions = values |> List.map LogAxis.Position |> Array.ofList
    plot.Add.Scatter(Array.init positions.Length float, positions) |> ignore
    LogAxis.UseOn(plot, positions)
    leftTicks plot

let private scatterYs (plot: ScottPlot.Plot) =
    plot.GetPlottables()
    |> Seq.choose (function :? ScottPlot.Plottables.Scatter as s -> Some s | _ -> None)
    |> Seq.map (fun s -> s.Data.GetScatterPoints() |> Seq.map (fun c -> c.Y) |> List.ofSeq)
    |> List.ofSeq

[<Tests>]
let tests =
    testList "Plot axes" [
        test "an FD curve from 17 to 1,000 is labelled at 1, 2 and 5 times powers of ten, in FD units, at their log10" {
            let ticks = ticksFor [ 1000.0; 400.0; 60.0; 17.0 ]
            Expect.equal (ticks |> List.map fst) [ "20"; "50"; "100"; "200"; "500"; "1,000" ] "decade ticks inside the range"
            for label, position in ticks do
                Expect.floatClose Accuracy.high position (Math.Log10(Double.Parse(label, Globalization.CultureInfo.InvariantCulture))) label
        }

        test "a curve within a narrow range gets evenly spaced round labels" {
            let ticks = ticksFor [ 31.0; 33.0; 35.0 ]
            Expect.equal (ticks |> List.map fst) [ "31"; "32"; "33"; "34"; "35" ] "one apart, no decade tick inside 31-35"
        }

        test "cluster weights four decades apart are drawn at their log10, labelled at powers of ten, each point the mean of its window of steps" {
            let dir, clean = tempDir "cluster-weights"
            use _ = clean
            let methods = DemoMethod.ParseList "uw:snr:2,nash:snr:2"
            // As in the fidelity study: UW's clusters at 5,000 and 0.1; Nash's alpha jumping between neighbouring steps
            // (0.1, 1.9, 0.1, ...: mean 1) and steady at 0.2. 1,000 steps give windows of 2 (about 400 points a line).
            let weights (m: DemoMethod) (step: int) =
                if m.Weighting = "uw" then [ 5000.0; 0.1 ] else [ (if step % 2 = 0 then 0.1 else 1.9); 0.2 ]
            for m in methods do
                File.WriteAllLines(Path.Combine(dir, m.Id + ".jsonl"),
                    [ for step in 0 .. 999 ->
                        let w = weights m step |> List.map (fun x -> x.ToString("R", Globalization.CultureInfo.InvariantCulture)) |> String.concat ", "
                        sprintf """{"step": %d, "cluster_weights": [%s]}""" step w ])
            let plot = MechanismPlots.ClusterWeights(methods, fun m -> Path.Combine(dir, m.Id + ".jsonl"))
            Expect.isNotNull plot "two methods logged weights"
            Expect.equal (leftTicks plot |> List.map fst) [ "0.1"; "1"; "10"; "100"; "1,000" ] "powers of ten over more than three decades"
            let lines = scatterYs plot
            Expect.equal (lines |> List.map List.length) [ 500; 500; 500; 500 ] "one line per method and cluster, one point per window of 2 steps"
            let level target = lines |> List.exists (fun ys -> ys |> List.forall (fun y -> abs (y - Math.Log10 target) < 1e-9))
            Expect.isTrue (level 5000.0 && level 0.1) "UW's weights at their log10"
            Expect.isTrue (level 0.2) "Nash's 0.2 at log10 0.2, a decade above UW's smallest, not flattened onto the axis"
            Expect.isTrue (level 1.0) "the jumping alpha drawn as its window means (1), not as every other step's 0.1 or 1.9"
        }
    ]
