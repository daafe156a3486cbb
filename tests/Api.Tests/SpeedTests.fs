/// Issue 13's speed work, by behaviour (no timings): bf16 mixed precision keeps fp32 master weights and learns, is
/// refused where the CPU lacks native bf16 and cannot change on resume; channels-last computes what NCHW computes;
/// the device-side schedule lookups equal the formula; the step profile books every step; freed C-heap pages go back.
module DiffusionFunctional.Api.Tests.SpeedTests

open System
open System.IO
open System.Runtime.InteropServices
open Expecto
open TorchSharp
open DiffusionFunctional
open DiffusionFunctional.Backend
open DiffusionFunctional.Diffusion
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Api.Tests.TestSupport
open DiffusionFunctional.Api.Tests.TrainingTests

/// bf16 needs the CPU feature; on a CPU without it the refusal test below covers the path instead.
let private bf16Test name body =
    if nativeBf16 then test name { body () } else ptest name { () }

let private options (precision: string) steps dir =
    TrainerOptions(Steps = steps, BatchSize = 32, LearningRate = 2e-3, Seed = 1L, Threads = Nullable 1, SampleCount = 0,
                   Precision = precision, OutputDirectory = Option.toObj dir)

let private mean (xs: seq<float>) = Seq.average xs

/// VmRSS of this process from /proc/self/status, in MB.
let private residentMegabytes () =
    let line = File.ReadLines "/proc/self/status" |> Seq.find (fun l -> l.StartsWith "VmRSS:")
    float (line.Split(' ', StringSplitOptions.RemoveEmptyEntries).[1]) / 1024.0

[<Tests>]
let tests =
    testList "Speed" [
        bf16Test "bf16 mixed precision trains a tiny UNet with falling loss while master weights, gradients and EMA stay float32" (fun () ->
            oneThread ()
            use data = syntheticBars ()
            use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options TrainingPrecision.Bf16 150 None)
            let losses = Collections.Generic.List<float>()
            let outcome = trainer.Train(progress = InlineProgress<StepMetrics>(fun m -> losses.Add m.MeanLoss))
            Expect.equal outcome TrainingOutcome.Completed "completed"
            let first, last = mean (Seq.take 10 losses), mean (Seq.skip (losses.Count - 10) losses)
            Expect.isLessThan last (0.7 * first) $"the plain loss falls (first ten {first:F3}, last ten {last:F3})"
            for p in trainer.Model.parameters() do
                Expect.equal p.dtype torch.float32 "master weights stay float32"
                Expect.equal p.grad.dtype torch.float32 "their gradients are float32"
            for p in trainer.Ema.Model.parameters() do Expect.equal p.dtype torch.float32 "the EMA is float32"
            use images = trainer.Sample(2)
            Expect.equal images.dtype torch.float32 "samples come from the fp32 EMA")

        bf16Test "a bf16 run and an fp32 run from the same seed start from the same weights and stay close for a few steps" (fun () ->
            oneThread ()
            use data = syntheticBars ()
            let run precision =
                use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options precision 3 None)
                [ for _ in 1 .. 3 -> trainer.TrainStep().MeanLoss ]
            let fp32, bf16 = run TrainingPrecision.Fp32, run TrainingPrecision.Bf16
            // Same batches, noise and initial weights: only bf16 rounding in the network separates the losses.
            for a, b in List.zip fp32 bf16 do Expect.floatClose { absolute = 0.0; relative = 0.05 } b a "bf16 loss near fp32's")

        test "bf16 is refused on a CPU without native bfloat16, naming the missing features; fp32 always passes" {
            let none = Bf16Support.CpuFeatures(false, false)
            let e = Expect.throwsC (fun () -> Bf16Support.Require("bf16", torch.CPU, none)) id
            Expect.isTrue (e :? BadInputException) "bad input, not a crash"
            Expect.stringContains e.Message "avx512_bf16" "names AVX512_BF16"
            Expect.stringContains e.Message "amx_bf16" "names AMX_BF16"
            Bf16Support.Require("fp32", torch.CPU, none)
            Bf16Support.Require("bf16", torch.CPU, Bf16Support.CpuFeatures(true, false))
            Bf16Support.Require("bf16", torch.CPU, Bf16Support.CpuFeatures(false, true))
            Expect.throwsT<BadInputException> (fun () -> Bf16Support.Require("fp16", torch.CPU, none)) "unknown precision"
            Expect.throwsT<BadInputException> (fun () -> TrainerOptions(Precision = "half").Validate(1000)) "options refuse it too"
        }

        test "auto precision is bf16 exactly where the CPU has native bfloat16 and the bf16 kernels pass the check" {
            Expect.equal (Bf16Support.Auto(torch.CPU, Bf16Support.CpuFeatures(false, false))) TrainingPrecision.Fp32 "no native bf16: fp32"
            let bf16Correct = ConvolutionKernels.Ensure().Bf16Correct = Nullable true
            let native = Bf16Support.Auto(torch.CPU, Bf16Support.CpuFeatures(true, false))
            Expect.equal native (if bf16Correct then TrainingPrecision.Bf16 else TrainingPrecision.Fp32) "native bf16: the kernel verdict decides"
            Expect.equal (Bf16Support.Auto(torch.CPU)) (if nativeBf16 && bf16Correct then TrainingPrecision.Bf16 else TrainingPrecision.Fp32) "this machine"
        }

        test "CPUID's bf16 features agree with the kernel's /proc/cpuinfo flags" {
            let cpuinfo = "/proc/cpuinfo"
            if not (File.Exists cpuinfo) then skiptest "no /proc/cpuinfo on this system"
            let flags =
                File.ReadLines cpuinfo |> Seq.find (fun l -> l.StartsWith "flags")
                |> fun l -> l.Split(':').[1].Split(' ', StringSplitOptions.RemoveEmptyEntries) |> Set.ofArray
            let detected = Bf16Support.Detect()
            Expect.equal detected.Avx512Bf16 (flags.Contains "avx512_bf16") "AVX512_BF16"
            Expect.equal detected.AmxBf16 (flags.Contains "amx_bf16") "AMX_BF16"
        }

        bf16Test "a resume cannot change the precision" (fun () ->
            oneThread ()
            use data = syntheticBars ()
            let dir, clean = tempDir "precision"
            use _ = clean
            do
                use first = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options TrainingPrecision.Fp32 4 (Some dir))
                first.TrainUntil 2L |> ignore
            use other = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options TrainingPrecision.Bf16 4 (Some dir))
            let e = Expect.throwsC (fun () -> other.TryResume() |> ignore) id
            Expect.stringContains e.Message "precision fp32, not bf16" "names the setting and both values"
            Expect.equal other.Step 0L "nothing loaded")

        bf16Test "a bf16 run resumed from its checkpoint continues exactly as the uninterrupted run" (fun () ->
            oneThread ()
            use data = syntheticBars ()
            let dirA, cleanA = tempDir "bf16-full"
            let dirB, cleanB = tempDir "bf16-resumed"
            use _ = cleanA
            use _ = cleanB
            let steps (trainer: Trainer) n = [ for _ in 1 .. n -> trainer.TrainStep().MeanLoss ]
            let full =
                use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options TrainingPrecision.Bf16 6 (Some dirA))
                steps trainer 6
            do
                use first = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options TrainingPrecision.Bf16 6 (Some dirB))
                first.TrainUntil 3L |> ignore
            use resumed = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options TrainingPrecision.Bf16 6 (Some dirB))
            Expect.isTrue (resumed.TryResume()) "found the checkpoint"
            Expect.equal (steps resumed 3) (List.skip 3 full) "the same losses, bit for bit")

        test "channels-last feature maps give the NCHW outputs and gradients to 1e-5" {
            oneThread ()
            torch.manual_seed 3L |> ignore
            let config = UNetConfig(ImageSize = 16, BaseChannels = 16, ChannelMultipliers = [| 1; 2 |], AttentionLevels = [| 1 |], NormGroups = 4)
            use model = new UNet(config)
            do
                use _ = torch.no_grad()
                for p in model.parameters() do p.add_(torch.randn_like(p).mul_((0.05).ToScalar())) |> ignore
            use x = torch.randn(4L, 1L, 16L, 16L)
            use t = torch.tensor([| 0L; 250L; 500L; 999L |])
            let outputAndGradients channelsLast =
                model.ChannelsLast <- channelsLast
                model.zero_grad()
                let y = model.forward(x, t)
                use loss = y.square().sum()
                loss.backward()
                y, [ for p in model.parameters() -> p.grad.clone() ]
            let y0, g0 = outputAndGradients false
            let y1, g1 = outputAndGradients true
            Expect.isLessThan (maxAbsDiff y0 y1) 1e-5 "outputs"
            for a, b in List.zip g0 g1 do
                Expect.isLessThan (maxAbsDiff a b) (1e-5 * max 1.0 (float (a.abs().max().item<float32>()))) "gradients"
            use h = torch.randn(2L, 8L, 5L, 5L)
            use nhwc = Layers.ToChannelsLast(h)
            Expect.equal (nhwc.stride(1)) 1L "channels are the fastest-moving dimension"
            Expect.equal (maxAbsDiff h nhwc) 0.0 "same values"
        }

        test "the device-side coefficient lookups equal sqrt(abar) and sqrt(1 - abar) rounded to float" {
            let eps = GaussianDiffusion.Create("linear", 1000)
            let v = GaussianDiffusion.Create("linear", 1000, PredictionType.V)
            use x0 = torch.randn(5L, 1L, 3L, 3L)
            use noise = torch.randn(5L, 1L, 3L, 3L)
            let steps = [| 0L; 1L; 420L; 998L; 999L |]
            use t = torch.tensor(steps)
            let coefficient (f: float -> float) = torch.tensor(steps |> Array.map (fun s -> float32 (f (eps.AlphaBar(int s))))).reshape(-1L, 1L, 1L, 1L)
            use a = coefficient sqrt
            use s = coefficient (fun ab -> sqrt (1.0 - ab))
            use xt = eps.AddNoise(x0, noise, t)
            Expect.equal (maxAbsDiff xt (a * x0 + s * noise)) 0.0 "x_t"
            use target = v.Target(x0, noise, t)
            Expect.equal (maxAbsDiff target (a * noise - s * x0)) 0.0 "v target"
        }

        test "the step profile books every step's forward, backward and optimiser time, and resets" {
            oneThread ()
            use data = syntheticBars ()
            use trainer = Trainer.Create(tinyConfig, GaussianDiffusion.Create(), data, options TrainingPrecision.Fp32 4 None)
            trainer.Train() |> ignore
            let seconds = trainer.Profile
            Expect.equal seconds.Steps 4L "four steps booked"
            for phase in [ StepPhase.Forward; StepPhase.Backward; StepPhase.Optimiser ] do
                Expect.isGreaterThan (seconds.Seconds phase) 0.0 $"{phase} booked"
            Expect.isGreaterThan (seconds.PerStep().[StepPhase.Forward]) 0.0 "per-step means"
            seconds.Reset()
            Expect.equal seconds.Steps 0L "reset"
            Expect.equal seconds.TotalSeconds 0.0 "reset"
        }

        testSequenced <| test "ReturnFreePages hands the C heap's free pages back to the system" {
            if not (OperatingSystem.IsLinux()) then skiptest "glibc's malloc_trim is Linux-only"
            // 2,000 blocks of 64 KiB: below glibc's mmap threshold, so they come from the heap and stay resident when
            // freed; the last one stays allocated so that the heap's top cannot shrink by itself.
            let ones = Array.create 65536 1uy
            let blocks = Array.init 2000 (fun _ -> Marshal.AllocHGlobal ones.Length)
            for b in blocks do Marshal.Copy(ones, 0, b, ones.Length) // touched, so resident
            for b in blocks.[.. blocks.Length - 2] do Marshal.FreeHGlobal b
            let held = residentMegabytes ()
            NativeMemory.ReturnFreePages()
            let after = residentMegabytes ()
            Marshal.FreeHGlobal blocks.[blocks.Length - 1]
            Expect.isGreaterThan (held - after) 64.0 $"of 125 MB freed, resident {held:F0} MB -> {after:F0} MB"
        }
    ]
