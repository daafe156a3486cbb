/// The convolution kernel check (docs/platform.md): its comparison catches wrong results, it passes the kernels in
/// force, ATen's fallback computes correct fp32 convolutions on any machine, and the pieces it rests on work.
module DiffusionFunctional.Api.Tests.KernelCheckTests

open System
open System.IO
open System.Runtime.InteropServices
open Expecto
open TorchSharp
open DiffusionFunctional.Backend
open DiffusionFunctional.Api.Tests.TestSupport

let private case = KernelCheck.Case(16, 24, 16, 8, 3, 1)

/// Runs `f` with ATen's own direct convolutions (oneDNN and NNPACK off, as DFN_KERNELS=aten), restoring the process's
/// settings afterwards.
let private withAten f =
    let oneDnn, nnpack = LibTorchNative.OneDnnEnabled, LibTorchNative.NnpackEnabled
    LibTorchNative.SetOneDnnEnabled false
    LibTorchNative.SetNnpackEnabled false
    try f () finally
        LibTorchNative.SetOneDnnEnabled oneDnn
        LibTorchNative.SetNnpackEnabled nnpack

[<Tests>]
let tests =
    testList "kernel check" [
        test "the kernels in force pass the comparison for every pass of a padded-channel case" {
            ConvolutionKernels.Ensure() |> ignore
            use scope = torch.NewDisposeScope()
            let reference = KernelCheck.Reference(case, torch.ScalarType.Float32, 3)
            let computed = reference.Compute()
            for i in 0 .. 2 do
                let excess = KernelCheck.Excess(computed[i], reference.Exact[i], reference.Bound[i])
                Expect.isLessThanOrEqual excess 1.0 (sprintf "%s within the bound" KernelCheck.Passes[i])
        }
        test "a deliberately corrupted result fails it: one wrong element, one NaN, one unwritten (zeroed) row" {
            use scope = torch.NewDisposeScope()
            let reference = KernelCheck.Reference(case, torch.ScalarType.Float32, 3)
            let output = reference.Compute()[0]
            let corrupt (change: torch.Tensor -> unit) =
                let t = output.clone()
                change t
                KernelCheck.Excess(t, reference.Exact[0], reference.Bound[0])
            let offByAPercent = corrupt (fun t -> t[0, 0, 0, 0].add_((0.01 * (1.0 + float (t[0, 0, 0, 0].abs().item<float32>()))).ToScalar()) |> ignore)
            Expect.isGreaterThan offByAPercent 1.0 "an element 1% off"
            Expect.equal (corrupt (fun t -> t[1, 2, 3, 4].fill_(nan.ToScalar()) |> ignore)) Double.PositiveInfinity "a NaN"
            Expect.isGreaterThan (corrupt (fun t -> t[2, 5].zero_() |> ignore)) 1.0 "a row left at zero"
        }
        test "ATen's own convolutions (the fallback) pass the whole fp32 check at one thread" {
            let result = withAten (fun () -> KernelCheck.Run(torch.ScalarType.Float32, [| 1 |]))
            Expect.isTrue result.Correct (sprintf "correct: %A" (Seq.truncate 3 result.Failures |> Seq.toList))
            Expect.equal result.Comparisons (2 * 3 * KernelCheck.Cases.Count) "two rounds of three passes per case"
        }
        test "the verdict in force on this machine says fp32 is correct, and the check agrees now" {
            let verdict = ConvolutionKernels.Ensure()
            Expect.isTrue verdict.Fp32Correct verdict.Summary
            let result = KernelCheck.Run(torch.ScalarType.Float32, [| 1 |])
            Expect.isTrue result.Correct (sprintf "%s: %A" verdict.Summary (Seq.truncate 3 result.Failures |> Seq.toList))
        }
        test "oneDNN's cache sizes are plausible once the verdict is applied (repaired where they were not)" {
            let verdict = ConvolutionKernels.Ensure()
            let outcome = OneDnnCacheRepair.Inspect(false)
            if outcome.Found && verdict.Configuration <> KernelConfiguration.Aten then
                Expect.isNonEmpty outcome.Before "cache levels"
                for size in outcome.Before do Expect.isGreaterThanOrEqual size 1024L (sprintf "%s: per-core cache of %d bytes" verdict.Summary size)
        }
        test "the ELF reader finds an exported libtorch function at the address the dynamic loader gives it" {
            let library = LibTorchNative.CpuLibrary()
            Expect.isTrue library.HasValue "libtorch_cpu.so is mapped"
            let path, baseAddress = library.Value.ToTuple()
            let symbol = "_ZN2at13globalContextEv"
            let handle = NativeLibrary.Load(path)
            let loaded = NativeLibrary.GetExport(handle, symbol)
            let found = ElfSymbols.Find(path, symbol)
            Expect.isTrue found.HasValue "found in .symtab"
            Expect.equal (nativeint found.Value + baseAddress) loaded "same address"
            Expect.isFalse (ElfSymbols.Find(path, "no_such_symbol_anywhere").HasValue) "an absent name"
        }
        test "the ELF reader refuses a file that is not ELF" {
            let dir, cleanup = tempDir "elf"
            use _ = cleanup
            let file = Path.Combine(dir, "not-elf.so")
            File.WriteAllBytes(file, Array.init 4096 byte)
            Expect.isFalse (ElfSymbols.Find(file, "anything").HasValue) "null"
        }
        test "libtorch's warnings are quiet: its log level is ERROR unless the user set one" {
            LibTorchNative.QuietWarnings()
            let handle = NativeLibrary.Load("libc10.so", typeof<torch>.Assembly, Nullable())
            let level = Marshal.ReadInt32(NativeLibrary.GetExport(handle, "FLAGS_caffe2_log_level"))
            let expected = if String.IsNullOrEmpty(Environment.GetEnvironmentVariable LibTorchNative.LogLevelVariable) then 2 else level
            Expect.equal level expected "caffe2_log_level (2 = ERROR)"
        }
        test "DFN_KERNELS names a configuration or auto; anything else is bad input naming the variable" {
            let before = Environment.GetEnvironmentVariable ConvolutionKernels.ChoiceVariable
            try
                Environment.SetEnvironmentVariable(ConvolutionKernels.ChoiceVariable, "AtEn")
                Expect.equal (ConvolutionKernels.Choice()) "aten" "case-insensitive"
                Environment.SetEnvironmentVariable(ConvolutionKernels.ChoiceVariable, "fast")
                let message =
                    try ConvolutionKernels.Choice() |> ignore; "" with :? DiffusionFunctional.BadInputException as e -> e.Message
                Expect.stringContains message "DFN_KERNELS='fast'" "bad input naming it"
            finally Environment.SetEnvironmentVariable(ConvolutionKernels.ChoiceVariable, before)
        }
    ]
