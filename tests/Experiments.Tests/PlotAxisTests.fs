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
    |> Seq.map (fun s -> s.LegendText, s.Data.GetScatterPoints() |> Seq.map (fun c -> c.Y) |> List.ofSeq)
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

        test "cluster weights four decades apart are drawn at their log10 and labelled at powers of ten, so Nash's small weights stay apart from zero" {
            let dir, clean = tempDir "cluster-weights"
            use _ = clean
            let methods = DemoMethod.ParseList "uw:snr:2,nash:snr:2"
            // As in the fidelity study: UW's noisiest cluster grows from 0.1 to 5,000 over training, Nash's weights stay in 0.2-8.
            let weights (m: DemoMethod) (step: int) =
                if m.Weighting = "uw" then [ 0.1 + 4999.9 * float step / 100.0; 0.1 + float step / 100.0 ] else [ 0.2; 8.0 ]
            for m in methods do
                File.WriteAllLines(Path.Combine(dir, m.Id + ".jsonl"),
                    [ for step in 0 .. 100 ->
                        let w = weights m step |> List.map (fun x -> x.ToString("R", Globalization.CultureInfo.InvariantCulture)) |> String.concat ", "
                        sprintf """{"step": %d, "cluster_weights": [%s]}""" step w ])
            let plot = MechanismPlots.ClusterWeights(methods, fun m -> Path.Combine(dir, m.Id + ".jsonl"))
            Expect.isNotNull plot "two methods logged weights"
            Expect.equal (leftTicks plot |> List.map fst) [ "0.1"; "1"; "10"; "100"; "1,000" ] "powers of ten over more than three decades"
            let lines = scatterYs plot
            Expect.equal lines.Length 4 "one line per method and cluster"
            let all = lines |> List.collect snd
            Expect.floatClose Accuracy.high (List.max all) (Math.Log10 5000.0) "UW's largest weight at its log10"
            Expect.floatClose Accuracy.high (List.min all) (Math.Log10 0.1) "UW's smallest at its log10"
            let minima = lines |> List.map (snd >> List.min)
            Expect.isTrue (minima |> List.exists (fun y -> abs (y - Math.Log10 0.2) < 1e-12))
                "Nash's 0.2 is drawn at log10 0.2, a decade above UW's start, not flattened onto the axis"
        }
    ]
