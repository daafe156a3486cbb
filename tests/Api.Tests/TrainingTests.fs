module DiffusionFunctional.Api.Tests.TrainingTests

open System
open System.IO
open System.Threading
open Expecto
open TorchSharp
open DiffusionFunctional.Timesteps
open DiffusionFunctional
open DiffusionFunctional.Core
open DiffusionFunctional.Data
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Weighting
open DiffusionFunctional.Api.Tests.TestSupport

/// 64 synthetic 8x8 images: a bright horizontal or vertical bar at one of four positions on a dark ground.
let syntheticBars () =
    let images = torch.ones([| 64L; 1L; 8L; 8L |]) * -1.0f
    use _ = torch.no_grad()
    for i in 0 .. 63 do
        let pos = torch.TensorIndex.Single(int64 (2 + (i / 2) % 4))
        let sample, channel = torch.TensorIndex.Single(int64 i), torch.TensorIndex.Single(0L)
        let where = if i % 2 = 0 then [| sample; channel; pos |] else [| sample; channel; torch.TensorIndex.Colon; pos |]
        use view = images.index(where)
        view.fill_(1.0f) |> ignore
    new ImageDataset(images, "synthetic bars")

/// Test options: 20 steps of batch 8, checkpoints every 10, no sample grids, one thread.
type Opts =
    static member Make(?dir: string, ?steps, ?seed, ?plan: ClusterPlan, ?checkpointEvery, ?batch) =
        TrainerOptions(Steps = defaultArg steps 20, BatchSize = defaultArg batch 8, LearningRate = 1e-3, Seed = defaultArg seed 5L,
                       Threads = Nullable 1, CheckpointEvery = defaultArg checkpointEvery 10, SampleCount = 0,
                       OutputDirectory = Option.toObj dir, Plan = Option.toObj plan)

let private tinyWithDropout =
    UNetConfig(ImageSize = 8, BaseChannels = 8, ChannelMultipliers = [| 1; 2 |], AttentionLevels = [| 1 |], NormGroups = 4, Dropout = 0.1)

/// Delegates to vanilla but reports a NaN loss from a given step on (simulates a diverging run).
type NaNFrom(step: int64) =
    let inner = new VanillaWeighting()
    interface IWeighting with
        member _.Name = "vanilla"
        member _.ExtraParameterGroups = (inner :> IWeighting).ExtraParameterGroups
        member _.Backward(batch, ps) =
            let loss = (inner :> IWeighting).Backward(batch, ps)
            if batch.Step + 1L >= step then nan else loss
        member _.Save w = ()
        member _.Load r = ()
        member _.Dispose() = ()

[<Tests>]
let tests =
    testList "Training" [
        test "a tiny UNet on synthetic 8x8 bars halves its loss within a few hundred steps" {
            oneThread ()
            use data = syntheticBars ()
            let opts = TrainerOptions(Steps = 300, BatchSize = 32, LearningRate = 2e-3, Seed = 1L, Threads = Nullable 1, SampleCount = 0)
            use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create("linear", 1000), data, opts)
            let losses = Collections.Generic.List<float>()
            let clock = Diagnostics.Stopwatch.StartNew()
            trainer.Train(progress = InlineProgress<StepMetrics>(fun m -> losses.Add m.Loss)) |> ignore
            let first = Seq.take 20 losses |> Seq.average
            let last = losses |> Seq.skip 250 |> Seq.average
            Expect.equal losses.Count 300 "one loss per step"
            Expect.isLessThan last (first * 0.5) (sprintf "mean loss of steps 1-20 %.4f, of 251-300 %.4f (%.1fs)" first last clock.Elapsed.TotalSeconds)
        }

        test "cluster-stratified sampling puts chunk c in cluster c" {
            let plan = ClusterPlan.Create(100, [| 0; 10; 50; 100 |], "test")
            use gen = new torch.Generator(3UL)
            let sampler = StratifiedTimesteps()
            use draw = sampler.Sample(7, plan, gen, torch.CPU)
            let ts = draw.Timesteps.data<int64>().ToArray()
            let cs = draw.Clusters.data<int64>().ToArray()
            Expect.sequenceEqual cs [| 0L; 0L; 0L; 1L; 1L; 2L; 2L |] "chunk sizes 3, 2, 2"
            for t, c in Array.zip ts cs do
                Expect.isTrue (int t >= plan.Start(int c) && int t < plan.End(int c)) (sprintf "t=%d in cluster %d" t c)
        }

        test "a resumed run reproduces the uninterrupted run's losses (dropout on, two clusters)" {
            oneThread ()
            use data = syntheticBars ()
            let dirA, cleanA = tempDir "resumeA"
            use _ = cleanA
            let plan = ClusterPlan.Create(1000, [| 0; 300; 1000 |], "test")
            let opts dir steps seed = Opts.Make(dir = dir, plan = plan, steps = steps, seed = seed)
            let run (trainer: Trainer) =
                let losses = Collections.Generic.List<float>()
                trainer.Train(progress = InlineProgress<StepMetrics>(fun m -> losses.Add m.Loss)) |> ignore
                List.ofSeq losses
            let full =
                use t = Trainer.Create(tinyWithDropout, GaussianDiffusion.Create(), data, opts dirA 20 5L)
                run t
            // Resume from the step-10 checkpoint the full run left: copy it aside first (the final one overwrote it).
            let dirB, cleanB = tempDir "resumeB"
            use _ = cleanB
            let firstHalf =
                use t = Trainer.Create(tinyWithDropout, GaussianDiffusion.Create(), data, opts dirB 10 5L)
                run t
            Expect.sequenceEqual firstHalf (List.take 10 full) "the first ten steps agree"
            // A resume with another seed would train something else: refused, naming the setting and both values.
            do
                use other = Trainer.Create(tinyWithDropout, GaussianDiffusion.Create(), data, opts dirB 20 77L)
                let e = Expect.throwsC (fun () -> other.TryResume() |> ignore) id
                Expect.stringContains e.Message "seed 5, not 77" "names the setting and both values"
                Expect.equal other.Step 0L "the trainer is left as it was"
            // Scrambled fresh weights and global RNG: everything must come from the checkpoint.
            use resumed = Trainer.Create(tinyWithDropout, GaussianDiffusion.Create(), data, opts dirB 20 5L)
            do
                use _ = torch.no_grad()
                for p in resumed.Model.parameters() do p.add_(torch.randn_like(p)) |> ignore
            torch.manual_seed 999L |> ignore
            Expect.isTrue (resumed.TryResume()) "found the checkpoint"
            Expect.equal resumed.Step 10L "resumes at step 10"
            let secondHalf = run resumed
            for a, b in List.zip secondHalf (List.skip 10 full) do
                Expect.floatClose { absolute = 0.0; relative = 1e-6 } a b "loss after resume"
            let logged = MetricsLog.ReadLosses(Path.Combine(dirB, "metrics.jsonl")) |> Seq.map (fun struct (_, loss) -> loss) |> List.ofSeq
            Expect.equal logged.Length 20 "metrics.jsonl holds one line per step"
        }

        test "a NaN loss ends the run as diverged before the update, names the step, and keeps the last good checkpoint" {
            oneThread ()
            use data = syntheticBars ()
            let dir, clean = tempDir "nan"
            use _ = clean
            torch.manual_seed 0L |> ignore
            let opts = Opts.Make(dir = dir, checkpointEvery = 2)
            use trainer = new Trainer(new UNet(tinyConfig), GaussianDiffusion.Create(), data, opts, new NaNFrom(5L))
            Expect.equal (trainer.Train()) TrainingOutcome.Diverged "reported as diverged, not thrown"
            Expect.equal trainer.Divergence.Step 5L "step named"
            Expect.stringContains trainer.Divergence.Reason "NaN" "reason names the value"
            Expect.equal trainer.Step 4L "step 5 was not taken"
            let last = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")) |> Array.last
            Expect.stringContains last "\"diverged\"" "metrics.jsonl ends with the divergence"
            let e = Expect.throwsC (fun () -> trainer.TrainStep() |> ignore) id
            match e with
            | :? TrainingDivergedException as d -> Expect.equal d.Step 5L "TrainStep throws, naming the step"
            | other -> failtestf "unexpected %O" other
            let path = Path.Combine(dir, Trainer.CheckpointName)
            Expect.isTrue (CheckpointFile.IsValid path) "checkpoint intact"
            use loaded = CheckpointModel.Load(path)
            Expect.equal loaded.Step 4L "the last good checkpoint is step 4"
        }

        test "cancellation finishes the step, writes a checkpoint and reports Interrupted" {
            oneThread ()
            use data = syntheticBars ()
            let dir, clean = tempDir "cancel"
            use _ = clean
            use cts = new CancellationTokenSource()
            use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, Opts.Make(dir = dir, checkpointEvery = 0))
            let outcome = trainer.Train(cts.Token, InlineProgress<StepMetrics>(fun m -> if m.Step = 3L then cts.Cancel()))
            Expect.equal outcome TrainingOutcome.Interrupted "interrupted"
            use loaded = CheckpointModel.Load(Path.Combine(dir, Trainer.CheckpointName))
            Expect.equal loaded.Step 3L "checkpoint of step 3"
        }

        test "a corrupted checkpoint is detected" {
            oneThread ()
            use data = syntheticBars ()
            let dir, clean = tempDir "corrupt"
            use _ = clean
            use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, Opts.Make(dir = dir, steps = 2))
            trainer.Train() |> ignore
            let path = Path.Combine(dir, Trainer.CheckpointName)
            Expect.isTrue (CheckpointFile.IsValid path) "valid as written"
            let bytes = File.ReadAllBytes path
            bytes.[bytes.Length / 2] <- bytes.[bytes.Length / 2] ^^^ 0xFFuy
            File.WriteAllBytes(path, bytes)
            Expect.isFalse (CheckpointFile.IsValid path) "one flipped byte is caught"
            File.WriteAllBytes(path, bytes.[0 .. 99])
            Expect.isFalse (CheckpointFile.IsValid path) "a truncated file is caught"
        }

        test "bad options are bad input" {
            use data = syntheticBars ()
            let build (o: TrainerOptions) () = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, o) |> ignore
            Expect.throwsT<BadInputException> (build (Opts.Make(steps = 0))) "steps 0"
            Expect.throwsT<BadInputException> (build (TrainerOptions(LearningRate = 0.0))) "lr 0"
            Expect.throwsT<BadInputException> (build (TrainerOptions(LearningRate = -1.0))) "lr < 0"
            Expect.throwsT<BadInputException> (build (Opts.Make(batch = 2, plan = ClusterPlan.Create(1000, [| 0; 10; 20; 1000 |], "t")))) "batch < clusters"
            let file = Path.GetTempFileName()
            try Expect.throwsT<BadInputException> (build (Opts.Make(dir = Path.Combine(file, "out")))) "unwritable out dir"
            finally File.Delete file
        }

        test "the live tensor count stays flat over many steps" {
            oneThread ()
            use data = syntheticBars ()
            use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, Opts.Make(steps = 1000))
            for _ in 1 .. 5 do trainer.TrainStep() |> ignore
            let before = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            for _ in 1 .. 60 do trainer.TrainStep() |> ignore
            let after = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            Expect.equal after before (sprintf "live tensors %d -> %d" before after)
        }
    ]
