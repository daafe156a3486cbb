module DiffusionFunctional.Experiments.Tests.AffinityReportTests

open System.IO
open Expecto
open TorchSharp
open DiffusionFunctional.Core
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Analysis
open DiffusionFunctional.Experiments.Analysis
open DiffusionFunctional.Api.Tests.TestSupport

[<Tests>]
let tests =
    testList "Affinity report" [
        test "end to end: affinity CSV and plots, then clustering on the CSV" {
            oneThread ()
            let dir, cleanup = tempDir "affinity"
            use _ = cleanup
            let diffusion = GaussianDiffusion.Create("linear", 40)
            use x = randomImages ()
            let loaders = [ for s in [ 3L; 4L ] -> System.Func<torch.nn.Module<torch.Tensor, torch.Tensor, torch.Tensor>>(fun () -> perturbedTinyUNet s :> _) ]
            let averaged = TaskAffinityAnalysis.MeasureAveraged(loaders, diffusion, x, TaskAffinityOptions(Groups = 4))
            let files = AffinityReport.Write(dir, averaged, diffusion.Schedule)
            for f in [ files.CsvPath; files.HeatmapPath; files.ScatterPath ] do
                Expect.isTrue (File.Exists f && FileInfo(f).Length > 0L) (sprintf "%s written" f)
            Expect.isFalse (System.Double.IsNaN files.SpearmanRho) "rho computed"
            match AffinityCsv.parse (File.ReadAllText files.CsvPath) with
            | Error e -> failtest e
            | Ok m ->
                Expect.equal m averaged.Cosines "CSV round trip"
                match Objectives.cluster diffusion.Schedule (AffinityObjective m) 2 with
                | Ok c -> Expect.equal c.Boundaries.[2] 40 "clusters reported in timesteps"
                | Error e -> failtest (ClusteringError.message e)
        }    ]
